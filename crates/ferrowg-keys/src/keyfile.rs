//! Secret key files: the one reader and writer of private and preshared keys kept on disk, in
//! base64 as `wg genkey` and `wg genpsk` write them.
//!
//! Rules (stricter than wg(8), which only warns):
//! - a regular file its group or others may access is refused, with the `chmod` that fixes it
//!   (also for PIN files: [`read_secret_file`]);
//! - at most [`MAX_KEY_FILE`] bytes are read, into memory that is zeroed after parsing;
//! - `-` and `/dev/stdin` read standard input;
//! - files are written with mode 0600 and replaced atomically ([`write_private_file`], also for
//!   other files that hold a secret).

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::key::{PresharedKey, PrivateKey};

/// Most bytes read from a key file: a key and its newline are 45.
pub const MAX_KEY_FILE: u64 = 4096;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// The file could not be opened, read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
    /// The file's group or others may access it.
    #[error(
        "`{}' is accessible by its group or others (mode {mode:04o}): a file holding a private \
         key or PIN must be private to its owner; run chmod 600 {}",
        path.display(),
        path.display()
    )]
    Exposed {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The content is not one base64 key.
    #[error("Key is not the correct length or format: `{}'", path.display())]
    Format {
        /// The file.
        path: PathBuf,
    },
}

/// Reads a private key file.
pub fn read_private_key(path: &Path) -> Result<PrivateKey, KeyFileError> {
    let text = read_secret(path)?;
    PrivateKey::from_base64(text.trim()).map_err(|_| format_error(path))
}

/// Reads a preshared key file.
pub fn read_preshared_key(path: &Path) -> Result<PresharedKey, KeyFileError> {
    let text = read_secret(path)?;
    PresharedKey::from_base64(text.trim()).map_err(|_| format_error(path))
}

/// Writes `key` in base64 to `path`, mode 0600, replacing the file atomically.
pub fn write_private_key(path: &Path, key: &PrivateKey) -> Result<(), KeyFileError> {
    let b64 = Zeroizing::new(key.to_base64());
    let text = Zeroizing::new(format!("{}\n", b64.as_str()));
    write_private_file(path, text.as_bytes())
}

/// Writes `data` to `path` readable and writable by its owner only (mode 0600), replacing the
/// file atomically: through a new file beside it, synced, then renamed over `path`. For every
/// file that holds a secret (key files, wg-quick configurations, PIN files).
pub fn write_private_file(path: &Path, data: &[u8]) -> Result<(), KeyFileError> {
    let err = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(err)?;
    let written = f.write_all(data).and_then(|()| f.sync_all());
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(err(e));
    }
    Ok(())
}

/// The file's text, bounded, in memory zeroed on drop; refused when group or others may access
/// a regular file. `-` and `/dev/stdin` read standard input.
fn read_secret(path: &Path) -> Result<Zeroizing<String>, KeyFileError> {
    if path == Path::new("-") || path == Path::new("/dev/stdin") {
        return read_bounded(&mut std::io::stdin().lock(), path);
    }
    read_secret_file(path)
}

/// Reads a file that holds a secret (a key, a PIN) under the rules of key files: a regular
/// file its group or others may access is refused ([`KeyFileError::Exposed`]), at most
/// [`MAX_KEY_FILE`] bytes are read, and every copy of the text is zeroed on drop. Content that
/// is not UTF-8 is [`KeyFileError::Format`].
pub fn read_secret_file(path: &Path) -> Result<Zeroizing<String>, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::File::open(path).map_err(io)?;
    let meta = f.metadata().map_err(io)?;
    let mode = meta.permissions().mode();
    if meta.is_file() && mode & 0o077 != 0 {
        return Err(KeyFileError::Exposed {
            path: path.to_owned(),
            mode: mode & 0o7777,
        });
    }
    read_bounded(&mut f, path)
}

/// At most [`MAX_KEY_FILE`] bytes of `reader` as text, in memory sized up front (a growing
/// vector would leave copies of the secret in freed memory) and zeroed on drop.
fn read_bounded(reader: &mut impl Read, path: &Path) -> Result<Zeroizing<String>, KeyFileError> {
    let mut buf = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE as usize + 1));
    reader
        .take(MAX_KEY_FILE)
        .read_to_end(&mut buf)
        .map_err(|source| KeyFileError::Io {
            path: path.to_owned(),
            source,
        })?;
    let text = std::str::from_utf8(&buf).map_err(|_| format_error(path))?;
    Ok(Zeroizing::new(text.to_owned()))
}

fn format_error(path: &Path) -> KeyFileError {
    KeyFileError::Format {
        path: path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("ferrowg-keyfile-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn key_files_must_be_private() {
        let d = tmpdir("perm");
        let path = d.join("k");
        let key = PrivateKey::from_bytes([0x41; 32]);
        write_private_key(&path, &key).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(read_private_key(&path).unwrap(), key);
        for bad in [0o640, 0o604, 0o644, 0o660, 0o602] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).unwrap();
            let e = read_private_key(&path).unwrap_err().to_string();
            assert!(
                e.contains("chmod 600") && e.contains(&format!("{bad:04o}")),
                "{e}"
            );
            let e = read_preshared_key(&path).unwrap_err();
            assert!(matches!(e, KeyFileError::Exposed { .. }), "{e}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        assert_eq!(read_private_key(&path).unwrap(), key);
        let bad = d.join("bad");
        std::fs::write(&bad, "not a key\n").unwrap();
        std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
        let e = read_private_key(&bad).unwrap_err().to_string();
        assert!(e.contains("not the correct length or format"), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn private_files_replace_atomically_with_mode_0600() {
        let d = tmpdir("replace");
        let path = d.join("wg0.conf");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private_file(&path, b"[Interface]\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"[Interface]\n");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
        let e = write_private_file(&d.join("missing").join("f"), b"x").unwrap_err();
        assert!(matches!(e, KeyFileError::Io { .. }), "{e}");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn an_existing_temporary_file_is_never_written_through() {
        let d = tmpdir("stale");
        let path = d.join("k");
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, "planted").unwrap();
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o666)).unwrap();
        // The temporary file is created exclusively: a planted one (with its mode) is not
        // reused, so the secret never lands in a file others may read.
        assert!(write_private_file(&path, b"secret").is_err());
        assert_eq!(std::fs::read(&tmp).unwrap(), b"planted");
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn secret_files_follow_the_key_file_rule() {
        let d = tmpdir("secret");
        let path = d.join("pin");
        write_private_file(&path, b"1234\n").unwrap();
        assert_eq!(read_secret_file(&path).unwrap().as_str(), "1234\n");
        for bad in [0o640, 0o604, 0o644] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(bad)).unwrap();
            let e = read_secret_file(&path).unwrap_err();
            assert!(matches!(e, KeyFileError::Exposed { .. }), "{e}");
            assert!(e.to_string().contains("chmod 600"), "{e}");
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        std::fs::write(&path, vec![b'7'; 2 * MAX_KEY_FILE as usize]).unwrap();
        assert_eq!(
            read_secret_file(&path).unwrap().len(),
            MAX_KEY_FILE as usize
        );
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn reads_are_bounded() {
        let d = tmpdir("big");
        let path = d.join("k");
        let key = PrivateKey::from_bytes([0x42; 32]).to_base64();
        // Only the first MAX_KEY_FILE bytes are read: a key within them is found, blanks
        // after it are cut off; a key pushed past the limit is not read at all.
        let text = format!("{key}\n{}", " ".repeat(MAX_KEY_FILE as usize));
        std::fs::write(&path, &text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(
            read_private_key(&path).is_ok(),
            "trailing blanks within the limit"
        );
        std::fs::write(&path, format!("{}{key}", " ".repeat(MAX_KEY_FILE as usize))).unwrap();
        assert!(matches!(
            read_private_key(&path),
            Err(KeyFileError::Format { .. })
        ));
        let _ = std::fs::remove_dir_all(&d);
    }
}
