//! Just enough of Kubernetes' `resource.Quantity` to compare sizes: parse a quantity string into
//! an exact integer count of nano-units. The API server rewrites quantities into canonical form
//! (`1.5Gi` becomes `1536Mi`), so comparing the strings would report a change that is not there.

/// The value of a quantity in nano-units (1 = 10^-9), or `None` when the text is not a quantity.
pub fn parse_nanos(text: &str) -> Option<i128> {
    let text = text.trim();
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let number_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(unsigned.len());
    let (number, suffix) = unsigned.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.len() > 9 {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mantissa: i128 = digits.parse().ok()?;
    // mantissa * 10^-fraction_len, expressed in nanos
    let nanos = mantissa.checked_mul(10_i128.pow(9 - fraction.len() as u32))?;
    let scaled = match suffix {
        "" => nanos,
        "m" => nanos / 1_000,
        "k" => nanos.checked_mul(1_000)?,
        "M" => nanos.checked_mul(1_000_000)?,
        "G" => nanos.checked_mul(10_i128.pow(9))?,
        "T" => nanos.checked_mul(10_i128.pow(12))?,
        "P" => nanos.checked_mul(10_i128.pow(15))?,
        "E" => nanos.checked_mul(10_i128.pow(18))?,
        "Ki" => nanos.checked_mul(1 << 10)?,
        "Mi" => nanos.checked_mul(1 << 20)?,
        "Gi" => nanos.checked_mul(1 << 30)?,
        "Ti" => nanos.checked_mul(1 << 40)?,
        "Pi" => nanos.checked_mul(1 << 50)?,
        "Ei" => nanos.checked_mul(1 << 60)?,
        exponent => {
            let power: i32 = exponent.strip_prefix(['e', 'E'])?.parse().ok()?;
            if power >= 0 {
                nanos.checked_mul(10_i128.checked_pow(power as u32)?)?
            } else {
                nanos / 10_i128.checked_pow(power.unsigned_abs())?
            }
        }
    };
    Some(sign * scaled)
}

/// Whether two quantity strings denote the same amount (`1Gi` and `1024Mi` do).
pub fn same_amount(a: &str, b: &str) -> bool {
    match (parse_nanos(a), parse_nanos(b)) {
        (Some(x), Some(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_binary_decimal_milli_and_exponent_forms() {
        assert_eq!(parse_nanos("1Gi"), Some((1_i128 << 30) * 1_000_000_000));
        assert_eq!(parse_nanos("1.5Gi"), parse_nanos("1536Mi"));
        assert_eq!(parse_nanos("100m"), parse_nanos("0.1"));
        assert_eq!(parse_nanos("1k"), parse_nanos("1e3"));
        assert_eq!(parse_nanos("2"), Some(2_000_000_000));
        assert_eq!(parse_nanos("-1"), Some(-1_000_000_000));
    }

    #[test]
    fn rejects_what_is_not_a_quantity() {
        for text in ["", "Gi", "abc", "1Gb", "1..2", "1.0000000001", "1e"] {
            assert_eq!(parse_nanos(text), None, "{text}");
        }
    }

    #[test]
    fn compares_amounts_not_spellings() {
        assert!(same_amount("1Gi", "1024Mi"));
        assert!(same_amount("500m", "0.5"));
        assert!(!same_amount("1Gi", "1G"));
        assert!(!same_amount("weird", "1"));
    }
}
