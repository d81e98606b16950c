//! f64 fields of the checkpoint header written so that they read back bit for bit. The
//! header is JSON, and serde_json (as built here, without `float_roundtrip`) may parse a
//! 17-digit number one ulp off: an epoch's loss sum came back as 453.728141784668 for
//! 453.72814178466797, and a resumed run's epoch average then differed. Written as a string
//! (Rust's shortest exact form), read with Rust's exact parser; a plain number (checkpoints
//! written before) is still accepted.

use serde::{Deserialize, Deserializer, Serializer};

#[derive(Deserialize)]
#[serde(untagged)]
enum Stored {
    Text(String),
    Number(f64),
}

fn parse<E: serde::de::Error>(stored: Stored) -> Result<f64, E> {
    match stored {
        Stored::Number(v) => Ok(v),
        Stored::Text(s) => s
            .parse::<f64>()
            .map_err(|_| E::custom(format!("{s:?} is not a number"))),
    }
}

pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{v:?}"))
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    parse(Stored::deserialize(d)?)
}

/// The same for `Option<f64>` (null stays null).
pub mod option {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => super::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Option::<Stored>::deserialize(d)?.map(parse).transpose()
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Sums {
        #[serde(with = "super")]
        loss: f64,
        #[serde(with = "super::option", default)]
        best: Option<f64>,
    }

    #[test]
    fn values_read_back_bit_for_bit_and_old_numbers_still_read() {
        for loss in [453.72814178466797, 0.1 + 0.2, 1e-300, -2.5, f64::MAX] {
            for best in [None, Some(0.9770000000000001)] {
                let s = Sums { loss, best };
                let back: Sums = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
                assert_eq!(back.loss.to_bits(), loss.to_bits());
                assert_eq!(back.best.map(f64::to_bits), best.map(f64::to_bits));
            }
        }
        let old: Sums = serde_json::from_str(r#"{"loss": 2.5, "best": 0.5}"#).unwrap();
        assert_eq!(
            old,
            Sums {
                loss: 2.5,
                best: Some(0.5)
            }
        );
        let missing: Sums = serde_json::from_str(r#"{"loss": 2.5}"#).unwrap();
        assert_eq!(missing.best, None);
        assert!(serde_json::from_str::<Sums>(r#"{"loss": "lots"}"#).is_err());
    }
}
