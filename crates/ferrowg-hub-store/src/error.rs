//! The store's one error type: what went wrong, in fields a caller (the REST API, the command
//! line) can turn into a status code and a message without parsing text.

use core::fmt;

/// Everything a store operation can fail with. No operation panics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The thing the operation names does not exist.
    #[error("{0} not found")]
    NotFound(Entity),
    /// The operation would break a uniqueness or state rule.
    #[error("conflict: {0}")]
    Conflict(Conflict),
    /// An input is refused before anything is read or written.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// Which input.
        field: Field,
        /// Which rule it breaks.
        reason: Reason,
    },
    /// The token does not exist, its secret does not match, or it was revoked. The three are
    /// not told apart, so that a caller cannot probe which token identifiers exist.
    #[error("token invalid")]
    TokenInvalid,
    /// The token has expired.
    #[error("token expired")]
    TokenExpired,
    /// The enrolment token has no uses left.
    #[error("token has no uses left")]
    TokenExhausted,
    /// Every address of the pool is taken.
    #[error("{0} address pool exhausted")]
    PoolExhausted(Family),
    /// The database holds a value this version cannot read (changed by hand, or a newer schema).
    #[error("stored data is corrupt: {0}")]
    Corrupt(&'static str),
    /// The database failed (I/O, lock timeout, connection).
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the schema migrations failed.
    #[error("migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Shorthand for results of store operations.
pub type Result<T, E = StoreError> = core::result::Result<T, E>;

/// Kinds of stored things, for [`StoreError::NotFound`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Entity {
    /// The hub settings (`hub init` has not run).
    Settings,
    /// A device, by name or public key.
    Device,
    /// An enrolment token, by identifier.
    EnrolmentToken,
    /// An admin token, by identifier.
    AdminToken,
    /// An advertised route of a device.
    Route,
    /// A pending key rotation.
    Rotation,
}

/// Which rule an operation would break, for [`StoreError::Conflict`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Conflict {
    /// `init` ran before on this database.
    AlreadyInitialised,
    /// Another device has this name.
    DeviceName,
    /// The public key belongs to a device already (current or pending key, or a revoked one).
    PublicKey,
    /// The operation needs a device that is not revoked.
    DeviceRevoked,
    /// A newly drawn identifier exists already (random collision; try again).
    Identifier,
    /// Address allocation kept colliding with concurrent writers.
    Address,
    /// The mapped prefix belongs to another route already.
    MappedPrefix,
}

/// Address families, for [`StoreError::PoolExhausted`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// Inputs that are validated, for [`StoreError::Invalid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Field {
    /// A device name.
    DeviceName,
    /// A device group.
    Group,
    /// The hub's endpoint (`HOST:PORT`).
    Endpoint,
    /// The IPv4 pool.
    Pool4,
    /// The IPv6 pool.
    Pool6,
    /// An advertised route.
    Route,
    /// The prefix a site route is mapped to.
    MappedRoute,
    /// A list of advertised routes.
    Routes,
    /// The policy text.
    PolicyText,
    /// An admin token's label.
    Label,
    /// A token's number of uses.
    Uses,
    /// A token's expiry.
    Expiry,
    /// A token identifier.
    TokenId,
    /// A count limit of a listing.
    Limit,
    /// The key-rotation schedule.
    RotateAfter,
    /// The search text of a device query.
    Search,
    /// A hub node's name.
    NodeName,
    /// A hub node's API address or version.
    NodeDetail,
}

/// Rules an input can break, for [`StoreError::Invalid`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// It is empty.
    Empty,
    /// It is longer than `max` (bytes, or entries for lists).
    TooLong {
        /// The limit.
        max: usize,
    },
    /// It holds a character the rule does not allow.
    BadCharacter,
    /// It does not have the required form.
    BadFormat,
    /// It is outside the allowed range.
    OutOfRange,
    /// It lists one thing twice.
    Duplicate,
}

impl StoreError {
    /// Shorthand for an [`StoreError::Invalid`].
    pub(crate) fn invalid(field: Field, reason: Reason) -> Self {
        Self::Invalid { field, reason }
    }

    /// Whether the database could not be reached (no connection, connection lost, server
    /// shutting down): the operation did nothing, and may succeed once the database is back.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Database(
                sqlx::Error::Io(_)
                | sqlx::Error::PoolTimedOut
                | sqlx::Error::PoolClosed
                | sqlx::Error::Tls(_)
                | sqlx::Error::WorkerCrashed,
            ) => true,
            // SQLSTATE classes 08 (connection exception) and 57 (operator intervention:
            // shutdown, crash).
            Self::Database(e) => e
                .as_database_error()
                .and_then(|d| d.code())
                .is_some_and(|c| c.starts_with("08") || c.starts_with("57")),
            _ => false,
        }
    }

    /// Whether this is a uniqueness violation reported by the database itself.
    pub(crate) fn is_unique_violation(&self) -> bool {
        match self {
            Self::Database(e) => e
                .as_database_error()
                .is_some_and(|d| d.is_unique_violation()),
            _ => false,
        }
    }
}

impl fmt::Display for Entity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Settings => "hub settings (run `ferrowg hub init`)",
            Self::Device => "device",
            Self::EnrolmentToken => "enrolment token",
            Self::AdminToken => "admin token",
            Self::Route => "route",
            Self::Rotation => "key rotation",
        })
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::AlreadyInitialised => "the hub is initialised already",
            Self::DeviceName => "a device with this name exists",
            Self::PublicKey => "the public key is in use",
            Self::DeviceRevoked => "the device is revoked",
            Self::Identifier => "identifier collision",
            Self::Address => "address allocation collided repeatedly",
            Self::MappedPrefix => "the mapped prefix belongs to another route",
        })
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DeviceName => "device name",
            Self::Group => "group",
            Self::Endpoint => "endpoint",
            Self::Pool4 => "IPv4 pool",
            Self::Pool6 => "IPv6 pool",
            Self::Route => "route",
            Self::MappedRoute => "mapped route prefix",
            Self::Routes => "routes",
            Self::PolicyText => "policy text",
            Self::Label => "label",
            Self::Uses => "uses",
            Self::Expiry => "expiry",
            Self::TokenId => "token identifier",
            Self::Limit => "limit",
            Self::RotateAfter => "rotate_after",
            Self::Search => "search text",
            Self::NodeName => "node name",
            Self::NodeDetail => "node API address or version",
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty"),
            Self::TooLong { max } => write!(f, "longer than {max}"),
            Self::BadCharacter => f.write_str("character not allowed"),
            Self::BadFormat => f.write_str("malformed"),
            Self::OutOfRange => f.write_str("out of range"),
            Self::Duplicate => f.write_str("duplicate entry"),
        }
    }
}
