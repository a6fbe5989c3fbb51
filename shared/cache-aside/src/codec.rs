//! How envelope bytes are stored: plain JSON, or LZ4-compressed JSON behind a marker that
//! JSON can never start with. Readers accept both, so entries written before compression was
//! turned on (or off) stay readable.

use std::borrow::Cow;

/// Why compressed bytes could not be expanded: damaged, or claiming more than
/// [`MAX_DECOMPRESSED_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("compressed cache entry unreadable: {0}")]
pub struct CodecError(String);

/// Starts every compressed value: 0xFF never begins UTF-8 text, so no JSON envelope has it.
const LZ4_MARKER: &[u8] = b"\xffLZ4";
/// Largest value a compressed entry may expand to. The size is read from the entry before
/// anything is allocated, so a damaged or hostile entry cannot claim gigabytes; Lambda answers
/// at most 6 MB anyway.
pub const MAX_DECOMPRESSED_BYTES: usize = 16 * 1024 * 1024;

/// When values are compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compression {
    /// Values of at least this many bytes (encoded JSON) are compressed; `None` turns
    /// compression off. LZ4 (lz4_flex's block format) has a single speed/ratio setting, so the
    /// threshold is the only knob.
    pub min_bytes: Option<usize>,
}

impl Default for Compression {
    /// On above 1 KiB: below that LZ4 saves too little to pay for the step.
    fn default() -> Self {
        Self {
            min_bytes: Some(1024),
        }
    }
}

impl Compression {
    /// The bytes to store for encoded `json`: compressed when it is long enough and
    /// compression makes it smaller, else as is.
    pub fn pack(&self, json: Vec<u8>) -> Vec<u8> {
        if self.min_bytes.is_none_or(|min| json.len() < min) || json.len() > MAX_DECOMPRESSED_BYTES {
            return json;
        }
        let compressed = lz4_flex::block::compress_prepend_size(&json);
        if compressed.len() + LZ4_MARKER.len() >= json.len() {
            return json;
        }
        let mut stored = Vec::with_capacity(LZ4_MARKER.len() + compressed.len());
        stored.extend_from_slice(LZ4_MARKER);
        stored.extend_from_slice(&compressed);
        stored
    }
}

/// The JSON in stored `bytes`, taking them over when they are plain.
pub fn into_json(bytes: Vec<u8>) -> Result<Vec<u8>, CodecError> {
    match unpack(&bytes)? {
        Cow::Borrowed(_) => Ok(bytes),
        Cow::Owned(json) => Ok(json),
    }
}

/// The JSON in stored `bytes`, decompressed when it was compressed.
pub fn unpack(bytes: &[u8]) -> Result<Cow<'_, [u8]>, CodecError> {
    let Some(compressed) = bytes.strip_prefix(LZ4_MARKER) else {
        return Ok(Cow::Borrowed(bytes));
    };
    let (claimed, _) =
        lz4_flex::block::uncompressed_size(compressed).map_err(|e| CodecError(e.to_string()))?;
    if claimed > MAX_DECOMPRESSED_BYTES {
        return Err(CodecError(format!(
            "claims {claimed} bytes, above the {MAX_DECOMPRESSED_BYTES}-byte limit"
        )));
    }
    lz4_flex::block::decompress_size_prepended(compressed)
        .map(Cow::Owned)
        .map_err(|e| CodecError(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: usize) -> Vec<u8> {
        let rows: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    r#"{{"objectid": {i}, "title": "A survey of the northern valley", "source": "archive"}}"#
                )
            })
            .collect();
        format!("[{}]", rows.join(",")).into_bytes()
    }

    #[test]
    fn large_values_shrink_and_come_back_whole() {
        let json = rows(500);
        let stored = Compression::default().pack(json.clone());
        assert!(stored.starts_with(LZ4_MARKER));
        assert!(stored.len() * 3 < json.len(), "{} → {}", json.len(), stored.len());
        assert_eq!(unpack(&stored).unwrap().as_ref(), json.as_slice());
    }

    #[test]
    fn small_values_and_disabled_compression_store_plain_json() {
        let small = br#"{"v":1}"#.to_vec();
        assert_eq!(Compression::default().pack(small.clone()), small);
        let off = Compression { min_bytes: None };
        assert_eq!(off.pack(rows(500)), rows(500));
        assert!(
            matches!(unpack(&small).unwrap(), Cow::Borrowed(_)),
            "plain JSON is read in place"
        );
    }

    #[test]
    fn incompressible_values_stay_plain() {
        let noise: Vec<u8> = (0..4096).map(|_| fastrand::u8(b'!'..=b'~')).collect();
        assert_eq!(Compression::default().pack(noise.clone()), noise);
    }

    #[test]
    fn damaged_or_oversized_entries_are_refused_without_allocating() {
        let mut bomb = LZ4_MARKER.to_vec();
        bomb.extend_from_slice(&u32::MAX.to_le_bytes());
        bomb.extend_from_slice(b"xx");
        assert!(matches!(unpack(&bomb), Err(CodecError(m)) if m.contains("limit")));
        let mut truncated = Compression::default().pack(rows(100));
        truncated.truncate(truncated.len() / 2);
        assert!(unpack(&truncated).is_err());
    }
}
