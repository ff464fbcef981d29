//! The SQL functions and the collation every native connection registers: Rust twins of
//! `covet/database/adapters/sqlite_support.py` (see the parent module for the regex notes).

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::borrow::Cow;
use std::cmp::Ordering as CmpOrdering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::worker::lock;

/// The collations every connection gets (as in `sqlite_support.COLLATIONS`).
pub const COLLATIONS: [&str; 1] = ["covet_decimal"];
/// The SQL functions every connection gets: `(name, number of arguments)`.
pub const FUNCTIONS: [(&str, i32); 5] = [
    ("lower", 1),
    ("upper", 1),
    ("covet_regexp", 2),
    ("covet_iregexp", 2),
    ("regexp", 2),
];

const REGEX_CACHE: usize = 256;

/// Python's `repr(float)`: shortest round-trip digits, exponent below 1e-4 and from 1e16.
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{:e}", x.abs()); // e.g. "1.2345e-5": shortest round-trip digits
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let body = if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
        }
    } else {
        let mant = if digits.len() > 1 {
            format!("{}.{}", &digits[..1], &digits[1..])
        } else {
            digits
        };
        format!("{mant}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs())
    };
    if x < 0.0 {
        format!("-{body}")
    } else {
        body
    }
}

/// The text a Python function would see after `str()`-ing its argument (None for NULL).
pub fn text_of(value: ValueRef<'_>) -> Option<Cow<'_, str>> {
    match value {
        ValueRef::Null => None,
        ValueRef::Integer(n) => Some(Cow::Owned(n.to_string())),
        ValueRef::Real(x) => Some(Cow::Owned(py_float_repr(x))),
        ValueRef::Text(b) | ValueRef::Blob(b) => Some(String::from_utf8_lossy(b)),
    }
}

/// Translate the bits of Python `re` syntax that `regex` spells differently (`\Z` → `\z`).
pub fn translate_pattern(pattern: &str) -> Cow<'_, str> {
    if !pattern.contains("\\Z") {
        return Cow::Borrowed(pattern);
    }
    let mut out = String::with_capacity(pattern.len());
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '\\' {
            match chars.next() {
                Some('Z') => out.push('z'),
                Some(other) => out.push(other),
                None => {}
            }
        }
    }
    Cow::Owned(out)
}

/// Compiled patterns of one connection, by (pattern, ignore case).
#[derive(Default)]
pub struct RegexCache(Mutex<HashMap<(String, bool), Arc<regex::Regex>>>);

impl RegexCache {
    pub fn get(&self, pattern: &str, icase: bool) -> Result<Arc<regex::Regex>, String> {
        let mut map = lock(&self.0);
        if let Some(re) = map.get(&(pattern.to_owned(), icase)) {
            return Ok(Arc::clone(re));
        }
        let re = regex::RegexBuilder::new(&translate_pattern(pattern))
            .case_insensitive(icase)
            .build()
            .map_err(|e| format!("invalid regular expression {pattern:?}: {e}"))?;
        if map.len() >= REGEX_CACHE {
            map.clear();
        }
        let re = Arc::new(re);
        map.insert((pattern.to_owned(), icase), Arc::clone(&re));
        Ok(re)
    }

    /// `covet_regexp(pattern, value)`: 1 when `pattern` matches anywhere in `value`, NULL for NULL.
    pub fn search(
        &self,
        pattern: ValueRef<'_>,
        value: ValueRef<'_>,
        icase: bool,
    ) -> Result<Option<i64>, String> {
        let (Some(pattern), Some(value)) = (text_of(pattern), text_of(value)) else {
            return Ok(None);
        };
        Ok(Some(i64::from(self.get(&pattern, icase)?.is_match(&value))))
    }
}

/// A decimal number as Python's `Decimal(text)` reads it, for comparing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decimal {
    NaN,
    Inf {
        negative: bool,
    },
    /// `0.d1d2... × 10^exp`; `digits` without leading or trailing zeros (empty for zero).
    Finite {
        negative: bool,
        digits: Vec<u8>,
        exp: i128,
    },
}

/// Parse like `decimal.Decimal(str)`: surrounding whitespace and every `_` ignored, optional
/// sign, `inf`/`infinity`/`nan`/`snan` (any case), digits with an optional point and exponent.
/// Only ASCII digits (Python also reads other Unicode decimal digits).
fn parse_decimal(text: &str) -> Option<Decimal> {
    let cleaned: String = text.trim().chars().filter(|&c| c != '_').collect();
    let (negative, body) = match cleaned.as_bytes().first() {
        Some(b'-') => (true, &cleaned[1..]),
        Some(b'+') => (false, &cleaned[1..]),
        _ => (false, &cleaned[..]),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(Decimal::Inf { negative });
    }
    let payload = lower
        .strip_prefix("nan")
        .or_else(|| lower.strip_prefix("snan"));
    if let Some(payload) = payload {
        return payload
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then_some(Decimal::NaN);
    }
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if int_part.len() + frac_part.len() == 0 || !all_digits(int_part) || !all_digits(frac_part) {
        return None;
    }
    let mut exp: i128 = match exponent {
        None => 0,
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !all_digits(digits) || digits.len() > 30 {
                return None;
            }
            let n: i128 = digits.parse().ok()?;
            if e.starts_with('-') {
                -n
            } else {
                n
            }
        }
    };
    let mut digits: Vec<u8> = int_part
        .bytes()
        .chain(frac_part.bytes())
        .map(|b| b - b'0')
        .collect();
    exp += int_part.len() as i128;
    let leading = digits.iter().take_while(|&&d| d == 0).count();
    digits.drain(..leading);
    exp -= leading as i128;
    while digits.last() == Some(&0) {
        digits.pop();
    }
    Some(Decimal::Finite {
        negative,
        digits,
        exp,
    })
}

fn cmp_decimal(a: &Decimal, b: &Decimal) -> CmpOrdering {
    use Decimal::{Finite, Inf, NaN};
    // Signed rank: -inf < negative < zero < positive < +inf.
    let rank = |d: &Decimal| match d {
        Inf { negative: true } => -2,
        Finite {
            negative: true,
            digits,
            ..
        } if !digits.is_empty() => -1,
        Finite {
            negative: false,
            digits,
            ..
        } if !digits.is_empty() => 1,
        Inf { negative: false } => 2,
        _ => 0,
    };
    match (a, b) {
        (NaN, _) | (_, NaN) => CmpOrdering::Equal, // Python raises there; sqlite3 then answers 0
        (
            Finite {
                negative,
                digits: da,
                exp: ea,
            },
            Finite {
                digits: db,
                exp: eb,
                ..
            },
        ) if rank(a) == rank(b) && rank(a) != 0 => {
            let magnitude = ea.cmp(eb).then_with(|| da.cmp(db));
            if *negative {
                magnitude.reverse()
            } else {
                magnitude
            }
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

/// `COLLATE covet_decimal` (`sqlite_support.decimal_collation`): decimal text compared as exact
/// numbers; when either side is not a number, plain text (code point) order.
pub fn decimal_collation(a: &str, b: &str) -> CmpOrdering {
    match (parse_decimal(a), parse_decimal(b)) {
        (Some(x), Some(y)) => cmp_decimal(&x, &y),
        _ => a.cmp(b),
    }
}

fn user_error(message: String) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(message.into())
}

pub(super) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    conn.create_collation(COLLATIONS[0], decimal_collation)?;
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("lower", 1, flags, |ctx: &Context<'_>| {
        Ok(text_of(ctx.get_raw(0)).map(|s| s.to_lowercase()))
    })?;
    conn.create_scalar_function("upper", 1, flags, |ctx: &Context<'_>| {
        Ok(text_of(ctx.get_raw(0)).map(|s| s.to_uppercase()))
    })?;
    let cache = Arc::new(RegexCache::default());
    for (name, icase) in [
        ("covet_regexp", false),
        ("covet_iregexp", true),
        ("regexp", false),
    ] {
        let cache = Arc::clone(&cache);
        conn.create_scalar_function(name, 2, flags, move |ctx: &Context<'_>| {
            cache
                .search(ctx.get_raw(0), ctx.get_raw(1), icase)
                .map_err(user_error)
        })?;
    }
    Ok(())
}
