//! How an admin command reaches the hub: `--data DIR` (the API address and pin from
//! `DIR/hub.json`, the credential from `DIR/admin.token`), or `--hub URL --admin-token-file F
//! --pin PIN` for a hub elsewhere; given both, the explicit options win. The admin token file
//! is read under the rules of key files (refused when its group or others may read it).

use std::path::PathBuf;

use clap::Args;
use ferrowg_keys::keyfile::read_secret_file;

use super::CliError;
use crate::client::Client;
use crate::paths::DataDir;
use crate::tls::Pin;

/// The options that say which hub to talk to.
#[derive(Debug, Clone, Args)]
pub struct ConnArgs {
    /// The hub's data directory (reads hub.json and admin.token).
    #[arg(long, value_name = "DIR")]
    pub data: Option<PathBuf>,
    /// The hub's API URL (https://HOST:PORT), instead of the one in DIR/hub.json.
    #[arg(long, value_name = "URL")]
    pub hub: Option<String>,
    /// A file holding an admin token (ID.SECRET), instead of DIR/admin.token.
    #[arg(long, value_name = "FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// The API certificate's pin (sha256:…), instead of the one in DIR/hub.json.
    #[arg(long, value_name = "PIN")]
    pub pin: Option<String>,
}

impl ConnArgs {
    /// The client these options name.
    pub fn client(&self) -> Result<Client, CliError> {
        let file = match &self.data {
            Some(dir) => Some(DataDir::new(dir).read_hub_file().map_err(CliError)?),
            None => None,
        };
        let need = "give --data DIR (a hub's data directory), or --hub URL --admin-token-file \
                    FILE --pin PIN";
        let url = match (&self.hub, &file) {
            (Some(url), _) => url.clone(),
            (None, Some(f)) => f.api.clone(),
            (None, None) => return Err(CliError(need.into())),
        };
        let pin: Pin = match (&self.pin, &file) {
            (Some(p), _) => p.parse().map_err(|e| CliError(format!("--pin: {e}")))?,
            (None, Some(f)) => f.pin().map_err(CliError)?,
            (None, None) => return Err(CliError(format!("--pin is missing: {need}"))),
        };
        let token_file = match (&self.admin_token_file, &self.data) {
            (Some(f), _) => f.clone(),
            (None, Some(dir)) => DataDir::new(dir).admin_token(),
            (None, None) => return Err(CliError(format!("--admin-token-file is missing: {need}"))),
        };
        let token = read_secret_file(&token_file)?;
        Ok(Client::new(&url, pin, Some(token.trim()))?)
    }
}
