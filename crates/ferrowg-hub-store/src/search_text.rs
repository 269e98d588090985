//! The search texts of a device: its addresses and public keys as the API shows them
//! (`10.64.0.2/32`, base64), written beside the host numbers and key bytes so that the device
//! query ([`crate::device_query`]) can match them with `LIKE` on both databases.

use base64::Engine as _;

use crate::addresses::Pools;
use crate::error::Result;
use crate::schema::{key_from_stored, Conn};
use crate::settings;

/// The texts the search matches for a device's addresses (host numbers `v4`, `v6`): as the
/// API shows them, `10.64.0.2/32` and `fd64::2/128`.
pub(crate) fn address_texts(
    pools: &Pools,
    v4: i64,
    v6: Option<i64>,
) -> Result<(String, Option<String>)> {
    let v4 = format!("{}/32", pools.v4_of(v4)?);
    let v6 = pools.v6_of(v6)?.map(|a| format!("{a}/128"));
    Ok((v4, v6))
}

/// The text the search matches for a public key: base64, as `wg` prints it.
pub(crate) fn key_text(key: &[u8; 32]) -> String {
    base64::engine::general_purpose::STANDARD.encode(key)
}

/// Writes the search texts of devices and keys stored without them (before migration 0005);
/// returns how many rows it wrote. Call inside a write transaction.
pub(crate) async fn fill_search_text(conn: &mut Conn) -> Result<u64> {
    let devices: Vec<(i64, i64, Option<i64>)> =
        sqlx::query_as("SELECT id, ipv4_host, ipv6_host FROM devices WHERE ipv4_text IS NULL")
            .fetch_all(&mut *conn)
            .await?;
    let keys: Vec<(Vec<u8>,)> =
        sqlx::query_as("SELECT public_key FROM device_keys WHERE key_text IS NULL")
            .fetch_all(&mut *conn)
            .await?;
    if !devices.is_empty() {
        let pools = settings::pools(conn).await?;
        for (id, v4, v6) in &devices {
            let (v4_text, v6_text) = address_texts(&pools, *v4, *v6)?;
            sqlx::query("UPDATE devices SET ipv4_text = $2, ipv6_text = $3 WHERE id = $1")
                .bind(id)
                .bind(v4_text)
                .bind(v6_text)
                .execute(&mut *conn)
                .await?;
        }
    }
    for (key,) in &keys {
        let text = key_text(&key_from_stored(key)?);
        sqlx::query("UPDATE device_keys SET key_text = $2 WHERE public_key = $1")
            .bind(key.as_slice())
            .bind(text)
            .execute(&mut *conn)
            .await?;
    }
    Ok((devices.len() + keys.len()) as u64)
}
