//! Condition operators: their names, families and qualifiers.

use std::fmt;

/// The base condition operators of the AWS IAM policy language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // Each variant is the operator of the same name.
pub enum OperatorKind {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    BinaryEquals,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnLike,
    ArnNotEquals,
    ArnNotLike,
    Null,
}

/// The kind of value an operator compares, which decides how values are parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// Strings, compared exactly, ignoring case, or with wildcards.
    String,
    /// Decimal numbers.
    Numeric,
    /// ISO 8601 dates or epoch seconds.
    Date,
    /// `true` or `false`.
    Bool,
    /// Base64-encoded bytes.
    Binary,
    /// IPv4 or IPv6 addresses and CIDR blocks.
    Ip,
    /// ARNs, compared segment by segment.
    Arn,
    /// `true` (the key is absent) or `false` (it is present).
    Null,
}

impl ValueType {
    /// True when `text` is a valid request value of this type: what a condition of this
    /// family can compare. (IP values are single addresses here, not blocks.)
    pub fn accepts(self, text: &str) -> bool {
        use crate::values;
        match self {
            ValueType::String => true,
            ValueType::Numeric => values::Decimal::parse(text).is_some(),
            ValueType::Date => values::parse_date(text).is_some(),
            ValueType::Bool | ValueType::Null => values::parse_bool(text).is_some(),
            ValueType::Binary => values::parse_binary(text).is_some(),
            ValueType::Ip => values::parse_ip(text).is_some(),
            ValueType::Arn => values::split_arn(text).is_some_and(|p| p[0] == "arn"),
        }
    }
}

/// How a condition treats a context key with several values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SetQualifier {
    /// `ForAllValues:`: every request value must match; true when the key is absent or empty.
    ForAllValues,
    /// `ForAnyValue:`: at least one request value must match; false when the key is absent.
    ForAnyValue,
}

/// A full operator: a base operator, an optional set qualifier and an optional `IfExists`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Operator {
    /// The base operator.
    pub kind: OperatorKind,
    /// `ForAllValues:` or `ForAnyValue:`, if written.
    pub set: Option<SetQualifier>,
    /// True when the name ends in `IfExists`: an absent key then satisfies the condition.
    pub if_exists: bool,
}

const NAMES: [(&str, OperatorKind); 27] = [
    ("StringEquals", OperatorKind::StringEquals),
    ("StringNotEquals", OperatorKind::StringNotEquals),
    (
        "StringEqualsIgnoreCase",
        OperatorKind::StringEqualsIgnoreCase,
    ),
    (
        "StringNotEqualsIgnoreCase",
        OperatorKind::StringNotEqualsIgnoreCase,
    ),
    ("StringLike", OperatorKind::StringLike),
    ("StringNotLike", OperatorKind::StringNotLike),
    ("NumericEquals", OperatorKind::NumericEquals),
    ("NumericNotEquals", OperatorKind::NumericNotEquals),
    ("NumericLessThan", OperatorKind::NumericLessThan),
    ("NumericLessThanEquals", OperatorKind::NumericLessThanEquals),
    ("NumericGreaterThan", OperatorKind::NumericGreaterThan),
    (
        "NumericGreaterThanEquals",
        OperatorKind::NumericGreaterThanEquals,
    ),
    ("DateEquals", OperatorKind::DateEquals),
    ("DateNotEquals", OperatorKind::DateNotEquals),
    ("DateLessThan", OperatorKind::DateLessThan),
    ("DateLessThanEquals", OperatorKind::DateLessThanEquals),
    ("DateGreaterThan", OperatorKind::DateGreaterThan),
    ("DateGreaterThanEquals", OperatorKind::DateGreaterThanEquals),
    ("Bool", OperatorKind::Bool),
    ("BinaryEquals", OperatorKind::BinaryEquals),
    ("IpAddress", OperatorKind::IpAddress),
    ("NotIpAddress", OperatorKind::NotIpAddress),
    ("ArnEquals", OperatorKind::ArnEquals),
    ("ArnLike", OperatorKind::ArnLike),
    ("ArnNotEquals", OperatorKind::ArnNotEquals),
    ("ArnNotLike", OperatorKind::ArnNotLike),
    ("Null", OperatorKind::Null),
];

/// Every operator name a policy may use, with its qualifiers, for suggestions.
pub(crate) fn all_spellings() -> &'static [String] {
    static SPELLINGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SPELLINGS.get_or_init(spellings)
}

fn spellings() -> Vec<String> {
    let mut out = Vec::new();
    for (name, _) in NAMES {
        if name == "Null" {
            out.push(name.to_string());
            continue;
        }
        for set in ["", "ForAllValues:", "ForAnyValue:"] {
            out.push(format!("{set}{name}"));
            out.push(format!("{set}{name}IfExists"));
        }
    }
    out
}

impl OperatorKind {
    /// The operator's name as written in policies.
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(_, k)| *k == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }

    /// Looks up a base operator by its exact (case-sensitive) name.
    pub fn from_name(name: &str) -> Option<OperatorKind> {
        NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// The kind of value the operator compares.
    pub fn value_type(self) -> ValueType {
        use OperatorKind::*;
        match self {
            StringEquals
            | StringNotEquals
            | StringEqualsIgnoreCase
            | StringNotEqualsIgnoreCase
            | StringLike
            | StringNotLike => ValueType::String,
            NumericEquals
            | NumericNotEquals
            | NumericLessThan
            | NumericLessThanEquals
            | NumericGreaterThan
            | NumericGreaterThanEquals => ValueType::Numeric,
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => ValueType::Date,
            Bool => ValueType::Bool,
            BinaryEquals => ValueType::Binary,
            IpAddress | NotIpAddress => ValueType::Ip,
            ArnEquals | ArnLike | ArnNotEquals | ArnNotLike => ValueType::Arn,
            Null => ValueType::Null,
        }
    }

    /// True for the negated operators (`StringNotEquals`, `NotIpAddress`, ...). Their values
    /// combine with a logical NOR, and an absent key satisfies them.
    pub fn is_negated(self) -> bool {
        use OperatorKind::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// The positive operator a negated one negates (`StringNotLike` gives `StringLike`).
    pub fn positive(self) -> OperatorKind {
        use OperatorKind::*;
        match self {
            StringNotEquals => StringEquals,
            StringNotEqualsIgnoreCase => StringEqualsIgnoreCase,
            StringNotLike => StringLike,
            NumericNotEquals => NumericEquals,
            DateNotEquals => DateEquals,
            NotIpAddress => IpAddress,
            ArnNotEquals => ArnEquals,
            ArnNotLike => ArnLike,
            other => other,
        }
    }

    /// True where policy variables (`${aws:username}`) are expanded in the values.
    pub fn expands_variables(self) -> bool {
        matches!(self.value_type(), ValueType::String | ValueType::Arn)
    }
}

/// Why an operator name was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperatorError {
    /// Not an operator at all.
    Unknown,
    /// `NullIfExists` and its qualified forms: AWS rejects them.
    NullIfExists,
    /// `ForAllValues:Null` and `ForAnyValue:Null` are meaningless.
    QualifiedNull,
}

impl Operator {
    /// Parses an operator as written in a `Condition` block, e.g. `ForAnyValue:StringLikeIfExists`.
    /// Operator names are case-sensitive, as in AWS.
    pub fn parse(text: &str) -> Result<Operator, OperatorError> {
        let (set, rest) = if let Some(rest) = text.strip_prefix("ForAllValues:") {
            (Some(SetQualifier::ForAllValues), rest)
        } else if let Some(rest) = text.strip_prefix("ForAnyValue:") {
            (Some(SetQualifier::ForAnyValue), rest)
        } else {
            (None, text)
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(base) if OperatorKind::from_name(base).is_some() => (true, base),
            _ => (false, rest),
        };
        let kind = OperatorKind::from_name(base).ok_or(OperatorError::Unknown)?;
        if kind == OperatorKind::Null && if_exists {
            return Err(OperatorError::NullIfExists);
        }
        if kind == OperatorKind::Null && set.is_some() {
            return Err(OperatorError::QualifiedNull);
        }
        Ok(Operator {
            kind,
            set,
            if_exists,
        })
    }
}

impl fmt::Display for Operator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.set {
            Some(SetQualifier::ForAllValues) => f.write_str("ForAllValues:")?,
            Some(SetQualifier::ForAnyValue) => f.write_str("ForAnyValue:")?,
            None => {}
        }
        f.write_str(self.kind.name())?;
        if self.if_exists {
            f.write_str("IfExists")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qualifiers_and_suffix() {
        let op = Operator::parse("ForAnyValue:StringLikeIfExists").unwrap();
        assert_eq!(op.kind, OperatorKind::StringLike);
        assert_eq!(op.set, Some(SetQualifier::ForAnyValue));
        assert!(op.if_exists);
        assert_eq!(op.to_string(), "ForAnyValue:StringLikeIfExists");
    }

    #[test]
    fn every_spelling_round_trips() {
        for s in all_spellings() {
            assert_eq!(Operator::parse(s).unwrap().to_string(), *s);
        }
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(Operator::parse("StringLik"), Err(OperatorError::Unknown));
        assert_eq!(Operator::parse("stringequals"), Err(OperatorError::Unknown));
        assert_eq!(
            Operator::parse("NullIfExists"),
            Err(OperatorError::NullIfExists)
        );
        assert_eq!(
            Operator::parse("ForAllValues:Null"),
            Err(OperatorError::QualifiedNull)
        );
        assert_eq!(Operator::parse("IfExists"), Err(OperatorError::Unknown));
    }
}
