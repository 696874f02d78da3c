//! The password policy of パスワード変更: length, character classes, and what a
//! password must not be. The numbers are settings; the messages are the
//! screens' (Japanese).

/// Lengths allowed for login and confirmation passwords.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Fewest characters (a setting; 8 by default).
    pub min_len: usize,
    /// Most characters (a setting; 32 by default).
    pub max_len: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_len: 8,
            max_len: 32,
        }
    }
}

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyViolation {
    /// No password given.
    Empty,
    /// Shorter or longer than the policy allows.
    Length {
        /// The policy's fewest characters.
        min: usize,
        /// The policy's most characters.
        max: usize,
    },
    /// Only half-width letters, digits and symbols (ASCII 0x21–0x7E).
    Characters,
    /// Letters and digits must both be present.
    Classes,
    /// The same as the user's login ID.
    SameAsLoginId,
}

impl PolicyViolation {
    /// The screen's message, with the policy's numbers where it has them.
    pub fn message_ja(self) -> String {
        match self {
            PolicyViolation::Empty => "新しいパスワードを入力してください。".into(),
            PolicyViolation::Length { min, max } => {
                format!("パスワードは{min}文字以上{max}文字以内で入力してください。")
            }
            PolicyViolation::Characters => {
                "パスワードには半角英数字・記号のみ使用できます。".into()
            }
            PolicyViolation::Classes => {
                "パスワードには英字と数字をそれぞれ1文字以上含めてください。".into()
            }
            PolicyViolation::SameAsLoginId => "ログインIDと同じパスワードは設定できません。".into(),
        }
    }
}

impl PasswordPolicy {
    /// The rules as the screen lists them.
    pub fn rules_ja(&self) -> Vec<String> {
        vec![
            format!("{}文字以上{}文字以内", self.min_len, self.max_len),
            "半角英数字・記号が使用できます（英字と数字をそれぞれ1文字以上含めてください）".into(),
            "ログインIDと同じパスワードは設定できません".into(),
            "ログインパスワードと確認用パスワードには異なるパスワードを設定してください".into(),
            "現在と同じパスワードは設定できません".into(),
        ]
    }

    /// Checks what can be checked without the stored hashes.
    pub fn check(&self, new: &str, login_id: &str) -> Result<(), PolicyViolation> {
        if new.is_empty() {
            return Err(PolicyViolation::Empty);
        }
        if !new.chars().all(|c| ('\u{21}'..='\u{7e}').contains(&c)) {
            return Err(PolicyViolation::Characters);
        }
        let len = new.chars().count();
        if len < self.min_len || len > self.max_len {
            return Err(PolicyViolation::Length {
                min: self.min_len,
                max: self.max_len,
            });
        }
        if !new.chars().any(|c| c.is_ascii_alphabetic()) || !new.chars().any(|c| c.is_ascii_digit())
        {
            return Err(PolicyViolation::Classes);
        }
        if new.eq_ignore_ascii_case(login_id) {
            return Err(PolicyViolation::SameAsLoginId);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_at_its_boundaries() {
        let p = PasswordPolicy::default();
        assert_eq!(p.check("", "hanakodt"), Err(PolicyViolation::Empty));
        assert_eq!(
            p.check("abc1234", "hanakodt"),
            Err(PolicyViolation::Length { min: 8, max: 32 })
        );
        assert_eq!(p.check("abcd1234", "hanakodt"), Ok(()));
        assert_eq!(p.check(&format!("a{}", "1".repeat(31)), "hanakodt"), Ok(()));
        assert_eq!(
            p.check(&format!("a{}", "1".repeat(32)), "hanakodt"),
            Err(PolicyViolation::Length { min: 8, max: 32 })
        );
        assert_eq!(
            p.check("abcdefgh", "hanakodt"),
            Err(PolicyViolation::Classes)
        );
        assert_eq!(
            p.check("12345678", "hanakodt"),
            Err(PolicyViolation::Classes)
        );
        assert_eq!(
            p.check("ａｂｃｄ１２３４", "hanakodt"),
            Err(PolicyViolation::Characters)
        );
        assert_eq!(
            p.check("abcd 1234", "hanakodt"),
            Err(PolicyViolation::Characters)
        );
        assert_eq!(p.check("Shomei#2026", "hanakodt"), Ok(()));
        assert_eq!(
            p.check("user0001", "USER0001"),
            Err(PolicyViolation::SameAsLoginId)
        );
        for r in p.rules_ja() {
            assert!(!r.is_empty());
        }
    }
}
