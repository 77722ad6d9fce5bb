//! Reading input files with a size bound, so a huge or endless file cannot exhaust memory.

use std::io::Read;

/// Reads a file (or standard input for `-`), refusing more than `limit` bytes.
pub fn read_bounded(path: &str, limit: usize) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    let result = if path == "-" {
        std::io::stdin().lock().take(cap).read_to_end(&mut buf)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(cap).read_to_end(&mut buf))
    };
    result.map_err(|e| format!("{path}: {e}"))?;
    if buf.len() > limit {
        return Err(format!(
            "{path}: larger than {limit} bytes; a policy document is at most a few KB"
        ));
    }
    Ok(buf)
}
