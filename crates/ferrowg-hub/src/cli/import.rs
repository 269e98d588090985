//! `ferrowg hub device import FILE`: admits many devices that made their own keys, one line
//! each: `NAME PUBLIC_KEY GROUP` (blank lines and `#` comments skipped; `-` reads standard
//! input). Every line is checked before anything is sent; then the devices are added through
//! the API, [`IN_FLIGHT`] at a time, and each is printed as `NAME ADDRESS`. The rate goes to
//! standard error. A device the hub refuses is named with its line; the others stay added.

use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Semaphore;

use super::conn::ConnArgs;
use super::{out, CliError};
use crate::api::types::AddDeviceRequest;

/// Requests in flight at once.
pub const IN_FLIGHT: usize = 8;
/// Most lines one import reads.
pub const MAX_LINES: usize = 200_000;
/// Largest file one import reads, in bytes.
const MAX_BYTES: u64 = 64 * 1024 * 1024;

/// One device to add, with its line number.
struct Line {
    number: usize,
    req: AddDeviceRequest,
}

/// Runs the import of `file` through `conn`.
pub async fn run(file: &str, conn: &ConnArgs) -> Result<(), CliError> {
    let text = read(file)?;
    let lines = parse(file, &text)?;
    let client = conn.client()?;
    let gate = Arc::new(Semaphore::new(IN_FLIGHT));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for line in lines {
        let (client, gate) = (client.clone(), gate.clone());
        tasks.spawn(async move {
            let _slot = gate.acquire_owned().await;
            let result = client.add_device(&line.req).await;
            (line, result)
        });
    }
    let (mut added, mut failed) = (String::new(), Vec::new());
    let mut count = 0usize;
    while let Some(done) = tasks.join_next().await {
        let (line, result) = done.map_err(|e| CliError(format!("import: {e}")))?;
        match result {
            Ok(r) => {
                count += 1;
                let address = r.device.addresses.first().cloned().unwrap_or_default();
                added.push_str(&format!("{} {}\n", r.device.name, address));
            }
            Err(e) => failed.push(format!("{file}:{}: {}: {e}", line.number, line.req.name)),
        }
    }
    out(&added)?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "imported {count} devices in {secs:.2} s ({:.1} per second)",
        count as f64 / secs.max(1e-9)
    );
    if failed.is_empty() {
        Ok(())
    } else {
        failed.sort();
        Err(CliError(format!(
            "{} devices refused:\n{}",
            failed.len(),
            failed.join("\n")
        )))
    }
}

fn read(file: &str) -> Result<String, CliError> {
    let mut text = String::new();
    let reader: Box<dyn Read> = if file == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(file).map_err(|e| CliError(format!("{file}: {e}")))?)
    };
    reader
        .take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| CliError(format!("{file}: {e}")))?;
    if text.len() as u64 > MAX_BYTES {
        return Err(CliError(format!("{file}: larger than {MAX_BYTES} bytes")));
    }
    Ok(text)
}

/// The devices of `text`; the first malformed line fails the whole import.
fn parse(file: &str, text: &str) -> Result<Vec<Line>, CliError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let number = i + 1;
        let content = raw.split('#').next().unwrap_or("").trim();
        if content.is_empty() {
            continue;
        }
        let fields: Vec<&str> = content.split_whitespace().collect();
        let [name, key, group] = fields.as_slice() else {
            return Err(CliError(format!(
                "{file}:{number}: expected NAME PUBLIC_KEY GROUP, found {} fields",
                fields.len()
            )));
        };
        if ferrowg_keys::key::PublicKey::from_base64(key).is_err() {
            return Err(CliError(format!(
                "{file}:{number}: PUBLIC_KEY: not a WireGuard public key (base64)"
            )));
        }
        if out.len() == MAX_LINES {
            return Err(CliError(format!("{file}: more than {MAX_LINES} devices")));
        }
        out.push(Line {
            number,
            req: AddDeviceRequest {
                name: (*name).to_owned(),
                public_key: (*key).to_owned(),
                group: (*group).to_owned(),
                routes: vec![],
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_checked_before_anything_is_sent() {
        let key = ferrowg_keys::key::PublicKey::from_bytes([9; 32]).to_base64();
        let text = format!("# fleet\n\ns-1 {key} sensor\ns-2 {key} sensor # the same key\n");
        let lines = parse("f", &text).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].number, lines[1].number), (3, 4));
        assert_eq!(lines[1].req.name, "s-2");
        let e = parse("f", &format!("s-1 {key}\n")).err().unwrap();
        assert_eq!(e.0, "f:1: expected NAME PUBLIC_KEY GROUP, found 2 fields");
        let e = parse("f", "a b c\n").err().unwrap();
        assert_eq!(e.0, "f:1: PUBLIC_KEY: not a WireGuard public key (base64)");
    }
}
