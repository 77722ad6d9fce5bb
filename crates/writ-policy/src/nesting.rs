//! How deep brackets nest in a text, measured before a recursive parser reads it, so that
//! hostile input is refused instead of exhausting the stack.

/// The byte offset of the first opening bracket (a byte of `open`) that nests deeper than
/// `max`, counting only brackets outside double-quoted strings (with backslash escapes);
/// `close` holds the closing brackets. `None` if nothing nests that deep.
pub fn first_deeper_than(text: &str, max: usize, open: &[u8], close: &[u8]) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, b) in text.bytes().enumerate() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
        } else if b == b'"' {
            in_string = true;
        } else if open.contains(&b) {
            depth += 1;
            if depth > max {
                return Some(i);
            }
        } else if close.contains(&b) {
            depth = depth.saturating_sub(1);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::first_deeper_than;

    const OPEN: &[u8] = b"[{";
    const CLOSE: &[u8] = b"]}";

    #[test]
    fn the_first_bracket_past_the_limit_is_found() {
        assert_eq!(first_deeper_than("[[[]]]", 3, OPEN, CLOSE), None);
        assert_eq!(first_deeper_than("[{[[]]}]", 3, OPEN, CLOSE), Some(3));
        // Closed brackets do not count, nor do stray closing ones.
        assert_eq!(first_deeper_than("]][][][]", 1, OPEN, CLOSE), None);
        // Only the brackets given count.
        assert_eq!(first_deeper_than("((((", 1, OPEN, CLOSE), None);
        assert_eq!(first_deeper_than("((((", 1, b"(", b")"), Some(1));
    }

    #[test]
    fn brackets_in_strings_do_not_count() {
        assert_eq!(
            first_deeper_than(r#"["[[[[", "\"[[["]"#, 1, OPEN, CLOSE),
            None
        );
        assert_eq!(first_deeper_than(r#"["\\", [["#, 2, OPEN, CLOSE), Some(8));
    }
}
