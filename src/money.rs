//! Money as integer minor units (cents by default).
//!
//! Every amount is turned into an `i64` count of minor units exactly once, from the
//! decimal value *as written*, and rounded half away from zero (JOB.md, "Input"). After
//! that all arithmetic is integer arithmetic, so sums are exact and do not depend on
//! thread count or order. Binary floats (Parquet/IPC doubles) are converted through their
//! shortest round-trip decimal text, the way they print.
//!
//! Not for: formatting reports (see `output`) or currency symbols (we never accept them).

use std::fmt;

/// A decimal number as written: `mantissa × 10^-scale`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decimal {
    pub mantissa: i128,
    pub scale: i32,
}

/// Why a piece of text is not an amount we accept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecimalError {
    Empty,
    NotANumber,
    NotFinite,
    ThousandsSeparator,
    CommaDecimal,
    CurrencySymbol,
    TooLarge,
}

impl fmt::Display for DecimalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            DecimalError::Empty => "empty value",
            DecimalError::NotANumber => "not a number",
            DecimalError::NotFinite => "NaN or infinity is not an amount",
            DecimalError::ThousandsSeparator => "thousands separators are not accepted",
            DecimalError::CommaDecimal => "comma decimal separator: write 12.50, not 12,50",
            DecimalError::CurrencySymbol => "currency symbols are not accepted",
            DecimalError::TooLarge => "too large for 64-bit minor units",
        };
        f.write_str(text)
    }
}

const MAX_DIGITS: usize = 36;

/// Parses decimal text: optional sign, digits with an optional `.` fraction, optional
/// exponent (`1.5e3`). Leading and trailing whitespace is ignored.
pub fn parse_decimal(text: &str) -> Result<Decimal, DecimalError> {
    let s = text.trim();
    if s.is_empty() {
        return Err(DecimalError::Empty);
    }
    let bytes = s.as_bytes();
    let (negative, rest) = match bytes[0] {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let mut mantissa: i128 = 0;
    let mut digits = 0usize;
    let mut scale: i32 = 0;
    let mut seen_dot = false;
    let mut any_digit = false;
    let mut i = 0;
    while i < rest.len() {
        let c = rest[i];
        match c {
            b'0'..=b'9' => {
                any_digit = true;
                if mantissa != 0 || c != b'0' {
                    digits += 1;
                }
                if digits > MAX_DIGITS {
                    return Err(DecimalError::TooLarge);
                }
                mantissa = mantissa * 10 + i128::from(c - b'0');
                if seen_dot {
                    scale += 1;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            b'e' | b'E' if any_digit => break,
            _ => return Err(classify_bad(s)),
        }
        i += 1;
    }
    if !any_digit {
        return Err(classify_bad(s));
    }
    if i < rest.len() {
        let exp_text = std::str::from_utf8(&rest[i + 1..]).map_err(|_| DecimalError::NotANumber)?;
        let exp: i32 = exp_text.parse().map_err(|_| DecimalError::NotANumber)?;
        if !(-60..=60).contains(&exp) {
            return Err(if exp > 0 && mantissa != 0 {
                DecimalError::TooLarge
            } else {
                DecimalError::NotANumber
            });
        }
        scale -= exp;
    }
    Ok(Decimal {
        mantissa: if negative { -mantissa } else { mantissa },
        scale,
    })
}

fn classify_bad(s: &str) -> DecimalError {
    let lower = s.to_ascii_lowercase();
    let core = lower.trim_start_matches(['+', '-']);
    if matches!(core, "nan" | "inf" | "infinity") {
        return DecimalError::NotFinite;
    }
    let letters: String = s.chars().filter(|c| c.is_alphabetic()).collect();
    let is_code = letters.len() == 3 && letters.chars().all(|c| c.is_ascii_uppercase());
    let symbols = ['$', '€', '£', '¥', '₹', '₩', '¤', '₽', '₺', '₫', '฿'];
    if s.chars().any(|c| symbols.contains(&c)) || (is_code && s.chars().any(|c| c.is_ascii_digit()))
    {
        return DecimalError::CurrencySymbol;
    }
    if let Some(pos) = s.find(',') {
        let after = &s[pos + 1..];
        let digits_after = after.chars().take_while(|c| c.is_ascii_digit()).count();
        if digits_after == 3 && (after.len() == 3 || after[3..].starts_with(['.', ','])) {
            return DecimalError::ThousandsSeparator;
        }
        return DecimalError::CommaDecimal;
    }
    DecimalError::NotANumber
}

impl Decimal {
    /// Rounds to `decimals` decimal places, half away from zero, as an integer count of
    /// minor units.
    pub fn to_minor(self, decimals: u32) -> Result<i64, DecimalError> {
        let shift = decimals as i32 - self.scale;
        let value = if shift >= 0 {
            let factor = pow10(shift as u32).ok_or(DecimalError::TooLarge)?;
            self.mantissa
                .checked_mul(factor)
                .ok_or(DecimalError::TooLarge)?
        } else {
            match pow10((-shift) as u32) {
                Some(divisor) => div_round_half_away(self.mantissa, divisor),
                // More than 38 decimals below the unit: it rounds to zero.
                None => 0,
            }
        };
        i64::try_from(value).map_err(|_| DecimalError::TooLarge)
    }

    /// The exact product of two decimals (quantity × unit price).
    pub fn checked_mul(self, other: Decimal) -> Result<Decimal, DecimalError> {
        Ok(Decimal {
            mantissa: self
                .mantissa
                .checked_mul(other.mantissa)
                .ok_or(DecimalError::TooLarge)?,
            scale: self.scale + other.scale,
        })
    }
}

impl fmt::Display for Decimal {
    /// The decimal as written: `-123.45` for mantissa −12345 at scale 2; a negative scale
    /// as trailing zeros.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        if self.scale <= 0 {
            let zeros = "0".repeat(self.scale.unsigned_abs() as usize);
            return write!(f, "{sign}{digits}{zeros}");
        }
        let scale = self.scale as usize;
        let digits = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = digits.split_at(digits.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
    }
}

/// Plain decimal text (an optional sign, at most 18 digits, at most `decimals` of them
/// after an optional point, no space around) in minor units, without 128-bit
/// arithmetic: most amounts. `None` for anything else, which [`parse_decimal`] and
/// [`Decimal::to_minor`] settle (the same value when it is plain; an error or a rounded
/// value when not).
pub fn plain_minor(text: &str, decimals: u32) -> Option<i64> {
    let bytes = text.as_bytes();
    let (negative, rest) = match bytes.first()? {
        b'-' => (true, &bytes[1..]),
        b'+' => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    if rest.len() > 19 {
        return None;
    }
    let (mut value, mut digits, mut fraction) = (0u64, 0u32, None::<u32>);
    for &c in rest {
        match c {
            b'0'..=b'9' => {
                value = value * 10 + u64::from(c - b'0');
                digits += 1;
                if let Some(f) = &mut fraction {
                    *f += 1;
                }
            }
            b'.' if fraction.is_none() => fraction = Some(0),
            _ => return None,
        }
    }
    let scale = fraction.unwrap_or(0);
    if digits == 0 || scale > decimals {
        return None;
    }
    // At most 18 digits times at most 10^6: below 2^64 unless it is over i64 anyway.
    let minor = i64::try_from(value.checked_mul(10u64.checked_pow(decimals - scale)?)?).ok()?;
    Some(if negative { -minor } else { minor })
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

/// Integer division rounding half away from zero.
pub fn div_round_half_away(numerator: i128, divisor: i128) -> i128 {
    let q = numerator / divisor;
    let r = numerator % divisor;
    // Unsigned, so twice a remainder of a divisor up to 10^38 cannot overflow.
    if 2 * r.unsigned_abs() >= divisor.unsigned_abs() {
        if (numerator < 0) != (divisor < 0) {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    }
}

/// Converts a binary float to minor units through its shortest round-trip decimal text.
///
/// Fast path: when the scaled value is not near a half, the text and the float round to
/// the same integer, so the text is only built for the ambiguous cases.
pub fn f64_to_minor(value: f64, decimals: u32) -> Result<i64, DecimalError> {
    if value.is_nan() || value.is_infinite() {
        return Err(DecimalError::NotFinite);
    }
    let scaled = value * pow10_f64(decimals);
    if scaled.abs() < 4.0e15 {
        // floor and round by integer conversion (exact below 2^53), which compiles to
        // a few instructions where the float functions are library calls.
        let truncated = scaled as i64;
        let floor = if (truncated as f64) > scaled {
            truncated - 1
        } else {
            truncated
        };
        let frac = scaled - floor as f64;
        if (frac - 0.5).abs() > 1e-6 {
            return Ok(if frac < 0.5 { floor } else { floor + 1 });
        }
    }
    parse_decimal(&format!("{value}"))?.to_minor(decimals)
}

/// `10^decimals` as a float: exact up to 10^22, from a table rather than `powi`.
fn pow10_f64(decimals: u32) -> f64 {
    const TABLE: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    match TABLE.get(decimals as usize) {
        Some(&p) => p,
        None => 10f64.powi(decimals as i32),
    }
}

/// Parses decimal text straight to minor units.
pub fn text_to_minor(text: &str, decimals: u32) -> Result<i64, DecimalError> {
    parse_decimal(text)?.to_minor(decimals)
}

/// Minor units as a float in currency units (exact for every cent amount below 2^53).
pub fn minor_to_f64(minor: i64, decimals: u32) -> f64 {
    minor as f64 / 10f64.powi(decimals as i32)
}

/// A fraction given as decimal text, applied to minor units with exact rounding
/// (used for the margin rule: profit = amount × margin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio(Decimal);

impl Ratio {
    pub const ONE: Ratio = Ratio(Decimal {
        mantissa: 1,
        scale: 0,
    });

    pub fn parse(text: &str) -> Result<Ratio, DecimalError> {
        let d = parse_decimal(text)?;
        if d.scale > 30 || d.scale < -18 {
            return Err(DecimalError::TooLarge);
        }
        Ok(Ratio(d))
    }

    /// The ratio as an exact decimal (mantissa × 10^−scale).
    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// `minor × ratio`, rounded half away from zero.
    pub fn apply(self, minor: i64) -> Result<i64, DecimalError> {
        let product = Decimal {
            mantissa: i128::from(minor)
                .checked_mul(self.0.mantissa)
                .ok_or(DecimalError::TooLarge)?,
            scale: self.0.scale,
        };
        product.to_minor(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero_as_written() {
        assert_eq!(text_to_minor("1.005", 2), Ok(101));
        assert_eq!(text_to_minor("-0.125", 2), Ok(-13));
        assert_eq!(text_to_minor("-0.124", 2), Ok(-12));
        assert_eq!(text_to_minor("12", 2), Ok(1200));
        assert_eq!(text_to_minor(" +3.5 ", 0), Ok(4));
        assert_eq!(text_to_minor(".5", 2), Ok(50));
        assert_eq!(text_to_minor("1.5e3", 2), Ok(150_000));
        assert_eq!(text_to_minor("125E-3", 2), Ok(13));
        assert_eq!(
            text_to_minor("0.0000000000000000000000000000000000000001", 2),
            Ok(0)
        );
    }

    #[test]
    fn floats_use_their_printed_text() {
        // The double nearest 1.005 lies below it, but it prints as 1.005.
        assert!(1.005f64 * 100.0 < 100.5);
        assert_eq!(f64_to_minor(1.005, 2), Ok(101));
        assert_eq!(f64_to_minor(-0.125, 2), Ok(-13));
        assert_eq!(f64_to_minor(2.675, 2), Ok(268));
        assert_eq!(f64_to_minor(12.34, 2), Ok(1234));
        assert_eq!(f64_to_minor(-7.0, 2), Ok(-700));
        assert_eq!(f64_to_minor(f64::NAN, 2), Err(DecimalError::NotFinite));
        assert_eq!(f64_to_minor(1e300, 2), Err(DecimalError::TooLarge));
    }

    #[test]
    fn float_fast_path_agrees_with_text_path() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            crate::xorshift(&mut x);
            let cents = (x % 2_000_000) as i64 - 1_000_000;
            let thousandths = (x >> 32) % 10;
            let v = cents as f64 / 100.0 + thousandths as f64 / 1000.0;
            let by_text = text_to_minor(&format!("{v}"), 2).unwrap();
            assert_eq!(f64_to_minor(v, 2), Ok(by_text), "{v}");
        }
    }

    #[test]
    fn rejects_what_is_not_a_plain_decimal() {
        assert_eq!(parse_decimal(""), Err(DecimalError::Empty));
        assert_eq!(parse_decimal("NaN"), Err(DecimalError::NotFinite));
        assert_eq!(parse_decimal("-inf"), Err(DecimalError::NotFinite));
        assert_eq!(
            parse_decimal("1,234.50"),
            Err(DecimalError::ThousandsSeparator)
        );
        assert_eq!(parse_decimal("12,50"), Err(DecimalError::CommaDecimal));
        assert_eq!(parse_decimal("$12.50"), Err(DecimalError::CurrencySymbol));
        assert_eq!(
            parse_decimal("12.50 EUR"),
            Err(DecimalError::CurrencySymbol)
        );
        assert_eq!(parse_decimal("abc"), Err(DecimalError::NotANumber));
        assert_eq!(parse_decimal("x1"), Err(DecimalError::NotANumber));
        assert_eq!(parse_decimal("0x10"), Err(DecimalError::NotANumber));
        assert_eq!(parse_decimal("USD 5"), Err(DecimalError::CurrencySymbol));
        assert_eq!(parse_decimal("1.2.3"), Err(DecimalError::NotANumber));
        assert_eq!(parse_decimal("-"), Err(DecimalError::NotANumber));
        assert_eq!(
            text_to_minor("99999999999999999999", 2),
            Err(DecimalError::TooLarge)
        );
        assert_eq!(text_to_minor("1e59", 2), Err(DecimalError::TooLarge));
    }

    #[test]
    fn products_and_ratios_are_exact() {
        let q = parse_decimal("3").unwrap();
        let p = parse_decimal("0.335").unwrap();
        assert_eq!(q.checked_mul(p).unwrap().to_minor(2), Ok(101));
        let margin = Ratio::parse("0.3").unwrap();
        assert_eq!(margin.apply(5), Ok(2)); // 1.5 rounds away from zero
        assert_eq!(margin.apply(-5), Ok(-2));
        assert_eq!(Ratio::ONE.apply(1234), Ok(1234));
        assert_eq!(div_round_half_away(-15, 10), -2);
        assert_eq!(div_round_half_away(14, 10), 1);
    }

    #[test]
    fn warehouse_decimals_round_from_their_unscaled_integer() {
        let d = |mantissa: i128, scale: i32| Decimal { mantissa, scale };
        // DECIMAL(p,4): 1.00500 and -1.005 lie on the half cent; 1.0049 below it.
        assert_eq!(d(10_050, 4).to_minor(2), Ok(101));
        assert_eq!(d(-10_050, 4).to_minor(2), Ok(-101));
        assert_eq!(d(10_049, 4).to_minor(2), Ok(100));
        assert_eq!(d(-10_049, 4).to_minor(2), Ok(-100));
        assert_eq!(d(12_345, 2).to_minor(2), Ok(12_345));
        assert_eq!(d(7, 0).to_minor(2), Ok(700));
        // The widest DECIMAL(38,38) at zero currency decimals: no overflow while rounding.
        let widest = 10i128.pow(38) - 1;
        assert_eq!(d(widest, 38).to_minor(0), Ok(1));
        assert_eq!(d(-widest, 38).to_minor(0), Ok(-1));
        assert_eq!(d(widest, 2).to_minor(2), Err(DecimalError::TooLarge));
        assert_eq!(d(i128::from(i64::MAX), 2).to_minor(2), Ok(i64::MAX));
        assert_eq!(
            d(i128::from(i64::MAX) + 1, 2).to_minor(2),
            Err(DecimalError::TooLarge)
        );
    }

    #[test]
    fn decimals_print_as_written() {
        let d = |mantissa: i128, scale: i32| Decimal { mantissa, scale }.to_string();
        assert_eq!(d(-12_345, 2), "-123.45");
        assert_eq!(d(5, 3), "0.005");
        assert_eq!(d(-5, 3), "-0.005");
        assert_eq!(d(1_200, 0), "1200");
        assert_eq!(d(12, -2), "1200");
        assert_eq!(d(0, 2), "0.00");
        assert_eq!(
            d(10i128.pow(38) - 1, 2),
            "999999999999999999999999999999999999.99"
        );
    }

    #[test]
    fn plain_minor_settles_the_usual_amounts() {
        assert_eq!(plain_minor("12.5", 2), Some(1250));
        assert_eq!(plain_minor("-0.07", 2), Some(-7));
        assert_eq!(plain_minor("+3", 0), Some(3));
        assert_eq!(plain_minor(".5", 2), Some(50));
        assert_eq!(plain_minor("5.", 2), Some(500));
        // Left to the general path: space around, more decimals than kept, exponents,
        // words, overflow.
        for text in [
            " 1",
            "1.005",
            "1e3",
            "abc",
            "",
            "-",
            ".",
            "1,5",
            "92233720368547758.08",
        ] {
            assert_eq!(plain_minor(text, 2), None, "{text:?}");
        }
    }

    proptest::proptest! {
        /// Whenever the plain path gives a value, the general path gives the same one.
        #[test]
        fn plain_minor_agrees_with_the_general_path(
            text in "[ ]?[+-]?[0-9]{0,20}([.][0-9]{0,8})?[ ]?",
            decimals in 0u32..=6,
        ) {
            let general = parse_decimal(&text).and_then(|d| d.to_minor(decimals)).ok();
            if let Some(minor) = plain_minor(&text, decimals) {
                proptest::prop_assert_eq!(Some(minor), general);
            } else if general.is_some() {
                // Only values with space around, that the plain path cannot hold, or
                // that round, go the long way.
                let digits = text.bytes().filter(u8::is_ascii_digit).count();
                let scale = text.split('.').nth(1).map_or(0, |f| f.trim().len());
                let spaced = text.trim() != text;
                proptest::prop_assert!(
                    spaced || digits > 18 || scale > decimals as usize,
                    "{text:?}"
                );
            }
        }
    }
}
