//! The console's files, compiled into the binary: plain HTML, CSS and JavaScript modules
//! written by hand (no build step, no library, nothing fetched at run time). They hold no
//! data and are served to anyone.

/// One file of the console.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Its name under `/ui/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:literal) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../../console/", $name)),
        }
    };
}

/// Every file of the console.
pub const ALL: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("common.js", "text/javascript; charset=utf-8"),
    asset!("graph.js", "text/javascript; charset=utf-8"),
    asset!("views.js", "text/javascript; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
];

/// The file called `name`, if the console has one.
pub fn find(name: &str) -> Option<&'static Asset> {
    ALL.iter().find(|a| a.name == name)
}

/// How many bytes the console's files add to the binary.
pub fn total_bytes() -> usize {
    ALL.iter().map(|a| a.bytes.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_console_is_small_and_loads_only_its_own_files() {
        // The budget: under 1 MB added to the binary.
        assert!(total_bytes() < 1_000_000, "{} bytes", total_bytes());
        let index = std::str::from_utf8(find("index.html").unwrap().bytes).unwrap();
        // Every script and stylesheet the page loads is one of ours, and none is inline.
        assert!(!index.contains("<style"), "inline style in index.html");
        for script in index.split("<script").skip(1) {
            let src = script
                .split_once("src=\"")
                .map(|(_, rest)| rest.split('"').next().unwrap_or_default())
                .expect("a script with no src (inline)");
            assert!(
                find(src.trim_start_matches("/ui/")).is_some(),
                "index.html loads {src}, which is not a console file"
            );
        }
        for asset in ALL {
            // SVG's namespace is a name, not a place anything is fetched from.
            let text =
                String::from_utf8_lossy(asset.bytes).replace("http://www.w3.org/2000/svg", "");
            for remote in [
                "http://",
                "https://",
                "//cdn",
                "localStorage",
                "sessionStorage",
            ] {
                assert!(!text.contains(remote), "{} uses {remote}", asset.name);
            }
        }
    }
}
