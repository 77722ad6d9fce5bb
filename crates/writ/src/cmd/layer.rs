//! `writ layer build`: `writ agent` packaged as an AWS Lambda extension layer.
//!
//! Lambda unpacks a layer under `/opt` and starts every executable in `/opt/extensions`
//! with no arguments and the function's environment. The layer holds:
//!
//! - `extensions/writ-agent`: a POSIX shell script that runs `writ agent` (the file name is
//!   the extension's name, which the agent registers with);
//! - `writ/bin/writ`: the binary (by default the one running this command: give a static
//!   build, `packaging/build-static.sh`, for Lambda's Amazon Linux);
//! - `writ/ca.pem`, with `--ca-file`: the trust bundle the agent verifies the server with
//!   at first contact, used when the function's environment sets no `WRIT_CACERT`.
//!
//! The agent reads every setting from the environment (docs/agent.md), so the function's
//! configuration is the layer's.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `writ layer ...`
#[derive(clap::Args)]
pub struct LayerArgs {
    #[command(subcommand)]
    command: LayerCommand,
}

#[derive(clap::Subcommand)]
enum LayerCommand {
    /// Build the layer zip: extensions/writ-agent, writ/bin/writ and, with --ca-file,
    /// writ/ca.pem.
    #[command(after_help = "Examples:
  bash packaging/build-static.sh writ-static
  writ layer build --binary writ-static --ca-file ca.pem --out writ-agent-layer.zip
  aws lambda publish-layer-version --layer-name writ-agent \\
      --zip-file fileb://writ-agent-layer.zip --compatible-architectures x86_64

Then give the function the layer and its settings as environment variables, for
example WRIT_ADDR=https://writ.internal:7443 and WRIT_ATTEST=aws-iam (docs/agent.md).")]
    Build(BuildArgs),
}

/// `writ layer build`
#[derive(clap::Args)]
struct BuildArgs {
    /// Where to write the zip.
    #[arg(long, default_value = "writ-agent-layer.zip")]
    out: PathBuf,
    /// The writ binary to package (default: this one). Lambda's Amazon Linux 2 has glibc
    /// 2.26: give a static build (packaging/build-static.sh).
    #[arg(long)]
    binary: Option<PathBuf>,
    /// A PEM trust bundle to include as writ/ca.pem.
    #[arg(long)]
    ca_file: Option<PathBuf>,
}

/// The extension's name: the file Lambda starts, and the name the agent registers with.
pub const EXTENSION: &str = writ_agent::extension::NAME;

/// The script Lambda starts. It finds the layer from its own path (`/opt` in Lambda), so
/// an unpacked copy anywhere runs the same way, and needs no program from `PATH`.
const SCRIPT: &str = r#"#!/bin/sh
# writ agent as an AWS Lambda extension, built by `writ layer build`. Lambda starts it with
# no arguments and the function's environment, from which the agent reads its settings
# (WRIT_ADDR, WRIT_FUNCTION or the function's own name, WRIT_ATTEST, ...: docs/agent.md).
layer="${0%/*}/.."
if [ -z "${WRIT_CACERT:-}" ] && [ -f "$layer/writ/ca.pem" ]; then
  WRIT_CACERT="$layer/writ/ca.pem"
  export WRIT_CACERT
fi
exec "$layer/writ/bin/writ" agent
"#;

/// One file of the layer: its path in the zip, its Unix mode and its bytes.
struct Entry {
    path: String,
    mode: u32,
    bytes: Vec<u8>,
}

/// The layer's files, in order: the functional core of `writ layer build`.
fn entries(binary: Vec<u8>, ca_pem: Option<String>) -> Vec<Entry> {
    let mut files = vec![
        Entry {
            path: format!("extensions/{EXTENSION}"),
            mode: 0o755,
            bytes: SCRIPT.as_bytes().to_vec(),
        },
        Entry {
            path: "writ/bin/writ".into(),
            mode: 0o755,
            bytes: binary,
        },
    ];
    if let Some(pem) = ca_pem {
        files.push(Entry {
            path: "writ/ca.pem".into(),
            mode: 0o644,
            bytes: pem.into_bytes(),
        });
    }
    files
}

/// Whether an ELF file names a program interpreter (is dynamically linked): its program
/// headers hold a `PT_INTERP`. `None` when the bytes are not a 64-bit little-endian ELF.
fn elf_interpreter(bytes: &[u8]) -> Option<bool> {
    let u16_at = |at: usize| {
        bytes
            .get(at..at + 2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let u64_at = |at: usize| {
        bytes
            .get(at..at + 8)
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes)
    };
    // ELF magic, 64-bit (class 2), little-endian (data 1).
    if bytes.get(..6)? != b"\x7fELF\x02\x01" {
        return None;
    }
    let phoff = usize::try_from(u64_at(0x20)?).ok()?;
    let phentsize = usize::from(u16_at(0x36)?);
    let phnum = usize::from(u16_at(0x38)?);
    if phentsize < 4 {
        return None;
    }
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let at = phoff.checked_add(i.checked_mul(phentsize)?)?;
        let kind = bytes.get(at..at + 4)?;
        if u32::from_le_bytes([kind[0], kind[1], kind[2], kind[3]]) == PT_INTERP {
            return Some(true);
        }
    }
    Some(false)
}

fn write_zip(out: &std::path::Path, files: &[Entry]) -> Result<(), String> {
    let shown = out.display();
    // Written beside the target and renamed into place: a failure leaves no half zip.
    let partial = out.with_extension("zip.partial");
    let file =
        std::fs::File::create(&partial).map_err(|e| format!("--out {}: {e}", partial.display()))?;
    let mut zip = zip::ZipWriter::new(file);
    for f in files {
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(f.mode);
        zip.start_file(f.path.as_str(), options)
            .and_then(|()| zip.write_all(&f.bytes).map_err(Into::into))
            .map_err(|e| format!("--out {shown}: {}: {e}", f.path))?;
    }
    zip.finish().map_err(|e| format!("--out {shown}: {e}"))?;
    std::fs::rename(&partial, out).map_err(|e| format!("--out {shown}: {e}"))
}

/// Runs `writ layer ...`.
pub fn run(args: LayerArgs) -> Result<ExitCode, String> {
    let LayerCommand::Build(args) = args.command;
    let binary_path = match &args.binary {
        Some(p) => p.clone(),
        None => std::env::current_exe().map_err(|e| format!("this writ binary: {e}"))?,
    };
    let binary = std::fs::read(&binary_path)
        .map_err(|e| format!("--binary {}: {e}", binary_path.display()))?;
    match elf_interpreter(&binary) {
        None => {
            return Err(format!(
                "--binary {}: not a 64-bit little-endian ELF executable (Lambda runs x86_64 and arm64 Linux)",
                binary_path.display()
            ));
        }
        Some(true) => eprintln!(
            "writ: note: {} is dynamically linked against this machine's glibc, which Lambda's \
             Amazon Linux may not have; for Lambda, build a static one with \
             packaging/build-static.sh and pass --binary",
            binary_path.display()
        ),
        Some(false) => {}
    }
    let ca_pem = match &args.ca_file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("--ca-file {}: {e}", p.display()))?;
            let certs =
                pem::parse_many(&text).map_err(|e| format!("--ca-file {}: {e}", p.display()))?;
            if !certs.iter().any(|c| c.tag() == "CERTIFICATE") {
                return Err(format!(
                    "--ca-file {}: no CERTIFICATE in it (give the trust bundle, `writ ca show --format pem` or the server's ca.pem)",
                    p.display()
                ));
            }
            Some(text)
        }
        None => None,
    };
    let files = entries(binary, ca_pem);
    write_zip(&args.out, &files)?;
    println!(
        "writ: wrote {} ({}): extensions/{EXTENSION} runs writ agent, configured by the function's environment",
        args.out.display(),
        files
            .iter()
            .map(|f| f.path.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_holds_the_script_the_binary_and_the_bundle_with_their_modes() {
        let files = entries(b"binary".to_vec(), Some("pem".into()));
        let listed: Vec<(&str, u32)> = files.iter().map(|f| (f.path.as_str(), f.mode)).collect();
        assert_eq!(
            listed,
            [
                ("extensions/writ-agent", 0o755),
                ("writ/bin/writ", 0o755),
                ("writ/ca.pem", 0o644)
            ]
        );
        assert!(files[0].bytes.starts_with(b"#!/bin/sh\n"));
        assert_eq!(entries(Vec::new(), None).len(), 2);
    }

    #[test]
    fn elf_interpreters_are_found_and_non_elf_is_refused() {
        let running = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // A test binary built for glibc is dynamically linked.
        if cfg!(all(target_env = "gnu", target_pointer_width = "64")) {
            assert_eq!(elf_interpreter(&running), Some(true));
        }
        assert_eq!(elf_interpreter(b"#!/bin/sh\n"), None);
        assert_eq!(elf_interpreter(b"\x7fELF\x02\x01"), None);
        // A header with no program headers: static as far as it says.
        let mut bare = vec![0u8; 64];
        bare[..6].copy_from_slice(b"\x7fELF\x02\x01");
        bare[0x36] = 56;
        assert_eq!(elf_interpreter(&bare), Some(false));
    }
}
