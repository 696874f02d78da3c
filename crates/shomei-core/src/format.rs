//! How the guide writes dates, times and counts on screens.

use time::{OffsetDateTime, UtcOffset};

/// `2010年10月01日 10時10分30秒`, in the bank's display offset (JST by default).
pub fn jp_datetime(t: OffsetDateTime, offset: UtcOffset) -> String {
    let t = t.to_offset(offset);
    format!(
        "{:04}年{:02}月{:02}日 {:02}時{:02}分{:02}秒",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `2010/10/01 10:10:30` for tables where space is short (操作履歴).
pub fn short_datetime(t: OffsetDateTime, offset: UtcOffset) -> String {
    let t = t.to_offset(offset);
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// `1,000`: a count with its thousands grouped by commas.
pub fn grouped(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(d);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_grouped_by_thousands() {
        for (n, s) in [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1000, "1,000"),
            (123_456, "123,456"),
            (1_000_000, "1,000,000"),
            (-4321, "-4,321"),
        ] {
            assert_eq!(grouped(n), s);
        }
    }
    use time::macros::{datetime, offset};

    #[test]
    fn formats_like_the_guide() {
        let t = datetime!(2010-10-01 01:10:30 UTC);
        assert_eq!(jp_datetime(t, offset!(+9)), "2010年10月01日 10時10分30秒");
        assert_eq!(short_datetime(t, offset!(+9)), "2010/10/01 10:10:30");
    }
}
