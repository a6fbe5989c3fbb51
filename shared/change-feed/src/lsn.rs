//! PostgreSQL log sequence numbers.

use std::fmt;
use std::str::FromStr;

/// A position in PostgreSQL's write-ahead log (`16/B374D848`); ordered like the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lsn(pub u64);

impl FromStr for Lsn {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (high, low) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?} is not an LSN (expected X/Y in hexadecimal)"))?;
        let part = |p: &str| {
            u32::from_str_radix(p, 16).map_err(|_| format!("{text:?} is not an LSN (bad hex {p:?})"))
        };
        Ok(Self((u64::from(part(high)?) << 32) | u64::from(part(low)?)))
    }
}

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xFFFF_FFFF)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_orders_like_the_log() {
        let a: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(a.to_string(), "16/B374D848");
        let b: Lsn = "17/0".parse().unwrap();
        assert!(a < b);
        assert!("16".parse::<Lsn>().is_err());
        assert!("G/0".parse::<Lsn>().is_err());
    }
}
