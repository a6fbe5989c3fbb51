//! The versioned wrapper stored in Redis around every cached value.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::time::Duration;

use crate::codec::CodecError;
use crate::outcome::{CacheState, Lookup};

/// Format version written into every envelope; a reader skips (treats as a miss) any other.
pub const ENVELOPE_VERSION: u32 = 1;

/// A cached value plus what is needed to reason about it later: when it was made, until when it
/// is fresh, and how long the origin took (the `delta` of early-refresh decisions).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope<T> {
    /// Format version, [`ENVELOPE_VERSION`].
    pub v: u32,
    /// Load completion time, Unix ms.
    pub created_ms: u64,
    /// End of freshness, Unix ms.
    pub fresh_until_ms: u64,
    /// Origin load duration, ms.
    pub load_ms: u64,
    /// The value itself.
    pub value: T,
}

/// Why stored bytes were not usable as an envelope.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// Not JSON of the expected shape.
    #[error("malformed cache envelope: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Marked compressed but not decompressible (damaged, or larger than allowed).
    #[error(transparent)]
    Compressed(#[from] CodecError),
    /// Written by another format version.
    #[error("cache envelope version {found}, expected {ENVELOPE_VERSION}")]
    Version {
        /// The version found.
        found: u32,
    },
}

impl<T> Envelope<T> {
    /// Wraps `value` loaded at `created_ms`, fresh for `ttl`, produced in `load`.
    pub fn new(value: T, created_ms: u64, ttl: Duration, load: Duration) -> Self {
        Self {
            v: ENVELOPE_VERSION,
            created_ms,
            fresh_until_ms: created_ms.saturating_add(ttl.as_millis() as u64),
            load_ms: load.as_millis() as u64,
            value,
        }
    }

    /// Freshness left at `now_ms`; zero once expired.
    pub fn remaining(&self, now_ms: u64) -> Duration {
        Duration::from_millis(self.fresh_until_ms.saturating_sub(now_ms))
    }

    /// Whether the value is still fresh at `now_ms`.
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        now_ms < self.fresh_until_ms
    }

    /// The answer this envelope gives at `now_ms`, as `state`.
    pub(crate) fn into_lookup(self, state: CacheState, now_ms: u64) -> Lookup<T> {
        Lookup {
            ttl_remaining: Some(self.remaining(now_ms)),
            loaded_at_ms: self.created_ms,
            load_duration: Duration::from_millis(self.load_ms),
            value: self.value,
            state,
            bypass_reason: None,
            too_large_to_store: false,
            from_memory: false,
        }
    }
}

impl<T: Serialize> Envelope<T> {
    /// JSON bytes, before compression.
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
}

impl<T: DeserializeOwned> Envelope<T> {
    /// Parses stored bytes of the current version: [`Envelope::encode`]'s JSON, or that JSON
    /// compressed by [`crate::Compression::pack`].
    pub fn decode(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        Self::decode_json(&crate::codec::unpack(bytes)?)
    }

    /// Parses an envelope's JSON (already decompressed).
    pub fn decode_json(json: &[u8]) -> Result<Self, EnvelopeError> {
        let envelope: Self = serde_json::from_slice(json)?;
        if envelope.v != ENVELOPE_VERSION {
            return Err(EnvelopeError::Version { found: envelope.v });
        }
        Ok(envelope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_tracks_freshness() {
        let e = Envelope::new(
            vec![1, 2, 3],
            1_000,
            Duration::from_secs(2),
            Duration::from_millis(5),
        );
        let back: Envelope<Vec<i32>> = Envelope::decode(&e.encode().unwrap()).unwrap();
        assert_eq!(back, e);
        assert_eq!(back.fresh_until_ms, 3_000);
        assert_eq!(back.load_ms, 5);
        assert!(back.is_fresh(2_999));
        assert!(!back.is_fresh(3_000));
        assert_eq!(back.remaining(2_500), Duration::from_millis(500));
        assert_eq!(back.remaining(9_000), Duration::ZERO);
    }

    #[test]
    fn rejects_other_versions_and_garbage() {
        let other = br#"{"v":2,"created_ms":1,"fresh_until_ms":2,"load_ms":0,"value":1}"#;
        assert!(matches!(
            Envelope::<i32>::decode(other),
            Err(EnvelopeError::Version { found: 2 })
        ));
        assert!(matches!(
            Envelope::<i32>::decode(b"not json"),
            Err(EnvelopeError::Malformed(_))
        ));
        let wrong_type = br#"{"v":1,"created_ms":1,"fresh_until_ms":2,"load_ms":0,"value":"x"}"#;
        assert!(Envelope::<i32>::decode(wrong_type).is_err());
    }
}
