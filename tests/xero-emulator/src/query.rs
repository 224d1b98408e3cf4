//! The list-query features of the Accounting API: `where` expressions, `order`, paging.
//! Filters run over the same JSON the API returns, so any field can be filtered or ordered on.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::util::{parse_datetime, parse_decimal};

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(String),
    Op(String),
    LParen,
    RParen,
    Comma,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            '"' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated string literal".into()),
                        // Xero's filter language (Dynamic LINQ) writes a quote inside a string
                        // as two quotes; a backslash is an ordinary character (Xero answers
                        // `\"` with a syntax error: XeroAPI/Xero-Java#347).
                        Some('"') if chars.get(i + 1) == Some(&'"') => {
                            v.push('"');
                            i += 2;
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            '=' | '!' | '<' | '>' | '&' | '|' => {
                let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
                let op = match two.as_str() {
                    "==" | "!=" | "<=" | ">=" | "&&" | "||" => two.clone(),
                    _ if matches!(c, '<' | '>' | '!') => c.to_string(),
                    _ if c == '=' => "==".to_string(),
                    _ => return Err(format!("unexpected '{c}'")),
                };
                i += if op == two { 2 } else { 1 };
                out.push(Tok::Op(op));
            }
            c if c.is_ascii_digit() || (c == '-' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit())) => {
                let start = i;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                out.push(Tok::Num(chars[start..i].iter().collect()));
            }
            c if c.is_alphanumeric() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(format!("unexpected '{other}'")),
        }
    }
    Ok(out)
}

#[derive(Clone, Debug)]
pub enum Lit {
    Str(String),
    Num(Decimal),
    Bool(bool),
    Null,
    Date(DateTime<Utc>),
}

#[derive(Clone, Debug)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Cmp(String, String, Lit),
    Method(String, String, String),
    Truthy(String),
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(w))
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.is_word("OR") || self.peek() == Some(&Tok::Op("||".into())) {
            self.pos += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.is_word("AND") || self.peek() == Some(&Tok::Op("&&".into())) {
            self.pos += 1;
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.is_word("NOT") || self.peek() == Some(&Tok::Op("!".into())) {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Tok::LParen) {
            self.pos += 1;
            let e = self.or()?;
            if self.next() != Some(Tok::RParen) {
                return Err("expected ')'".into());
            }
            return Ok(e);
        }
        let Some(Tok::Ident(path)) = self.next() else { return Err("expected a field name".into()) };
        for method in ["Contains", "StartsWith", "EndsWith"] {
            if let Some(field) = path.strip_suffix(&format!(".{method}")).filter(|_| self.peek() == Some(&Tok::LParen))
            {
                self.pos += 1;
                let Some(Tok::Str(arg)) = self.next() else { return Err(format!("{method} needs a string")) };
                if self.next() != Some(Tok::RParen) {
                    return Err("expected ')'".into());
                }
                return Ok(Expr::Method(field.to_string(), method.to_string(), arg));
            }
        }
        match self.peek() {
            Some(Tok::Op(op)) if !matches!(op.as_str(), "&&" | "||") => {
                let op = op.clone();
                self.pos += 1;
                Ok(Expr::Cmp(path, op, self.literal()?))
            }
            _ => Ok(Expr::Truthy(path)),
        }
    }

    fn literal(&mut self) -> Result<Lit, String> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Num(n)) => n.parse().map(Lit::Num).map_err(|_| format!("bad number {n}")),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("true") => Ok(Lit::Bool(true)),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("false") => Ok(Lit::Bool(false)),
            Some(Tok::Ident(w)) if w.eq_ignore_ascii_case("null") => Ok(Lit::Null),
            Some(Tok::Ident(f)) if f.eq_ignore_ascii_case("Guid") => {
                let args = self.args()?;
                match args.as_slice() {
                    [Tok::Str(s)] => Ok(Lit::Str(s.clone())),
                    _ => Err("Guid needs one string".into()),
                }
            }
            Some(Tok::Ident(f)) if f.eq_ignore_ascii_case("DateTime") || f.eq_ignore_ascii_case("DateTimeOffset") => {
                let args = self.args()?;
                let nums: Vec<u32> =
                    args.iter().filter_map(|t| if let Tok::Num(n) = t { n.parse().ok() } else { None }).collect();
                if let [Tok::Str(s)] = args.as_slice() {
                    return parse_datetime(s).map(Lit::Date).ok_or_else(|| format!("bad date {s}"));
                }
                let (y, m, d) = match nums.as_slice() {
                    [y, m, d, ..] => (*y, *m, *d),
                    _ => return Err("DateTime needs year, month, day".into()),
                };
                let time = (
                    nums.get(3).copied().unwrap_or(0),
                    nums.get(4).copied().unwrap_or(0),
                    nums.get(5).copied().unwrap_or(0),
                );
                NaiveDate::from_ymd_opt(y as i32, m, d)
                    .and_then(|d| d.and_hms_opt(time.0, time.1, time.2))
                    .map(|t| Lit::Date(t.and_utc()))
                    .ok_or_else(|| "invalid date".into())
            }
            other => Err(format!("expected a value, found {other:?}")),
        }
    }

    fn args(&mut self) -> Result<Vec<Tok>, String> {
        if self.next() != Some(Tok::LParen) {
            return Err("expected '('".into());
        }
        let mut args = vec![];
        loop {
            match self.next() {
                Some(Tok::RParen) => return Ok(args),
                Some(Tok::Comma) => {}
                Some(t) => args.push(t),
                None => return Err("expected ')'".into()),
            }
        }
    }
}

pub fn parse_where(s: &str) -> Result<Expr, String> {
    let mut p = Parser { toks: tokenize(s)?, pos: 0 };
    let e = p.or()?;
    if p.pos < p.toks.len() {
        return Err(format!("unexpected {:?}", p.toks[p.pos]));
    }
    Ok(e)
}

/// Case-insensitive dotted path lookup (`Contact.ContactID`).
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |cur, key| crate::util::field(cur, key))
}

fn compare(field: Option<&Value>, lit: &Lit) -> Option<Ordering> {
    match (field, lit) {
        (None, Lit::Null) => Some(Ordering::Equal),
        (None, _) | (_, Lit::Null) => None,
        (Some(v), Lit::Str(s)) => {
            let text = match v {
                Value::String(t) => t.clone(),
                other => other.to_string(),
            };
            Some(text.to_lowercase().cmp(&s.to_lowercase()))
        }
        (Some(v), Lit::Num(n)) => parse_decimal(v).map(|d| d.cmp(n)),
        (Some(Value::Bool(b)), Lit::Bool(l)) => Some(b.cmp(l)),
        (Some(Value::String(s)), Lit::Date(d)) => parse_datetime(s).map(|t| t.cmp(d)),
        _ => None,
    }
}

pub fn eval(e: &Expr, v: &Value) -> bool {
    match e {
        Expr::And(a, b) => eval(a, v) && eval(b, v),
        Expr::Or(a, b) => eval(a, v) || eval(b, v),
        Expr::Not(a) => !eval(a, v),
        Expr::Truthy(path) => matches!(lookup(v, path), Some(Value::Bool(true))),
        Expr::Method(path, method, arg) => {
            let Some(Value::String(s)) = lookup(v, path) else { return false };
            let (s, arg) = (s.to_lowercase(), arg.to_lowercase());
            match method.as_str() {
                "Contains" => s.contains(&arg),
                "StartsWith" => s.starts_with(&arg),
                _ => s.ends_with(&arg),
            }
        }
        Expr::Cmp(path, op, lit) => {
            let ord = compare(lookup(v, path), lit);
            match op.as_str() {
                "==" => ord == Some(Ordering::Equal),
                "!=" => ord != Some(Ordering::Equal),
                "<" => ord == Some(Ordering::Less),
                "<=" => matches!(ord, Some(Ordering::Less | Ordering::Equal)),
                ">" => ord == Some(Ordering::Greater),
                ">=" => matches!(ord, Some(Ordering::Greater | Ordering::Equal)),
                _ => false,
            }
        }
    }
}

fn order_key_cmp(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(Value::String(x)), Some(Value::String(y))) => match (parse_datetime_ms(x), parse_datetime_ms(y)) {
            (Some(p), Some(q)) => p.cmp(&q),
            _ => x.to_lowercase().cmp(&y.to_lowercase()),
        },
        (Some(x), Some(y)) => match (parse_decimal(x), parse_decimal(y)) {
            (Some(p), Some(q)) => p.cmp(&q),
            _ => x.to_string().cmp(&y.to_string()),
        },
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Only Xero's `/Date(...)/` strings sort as dates; other strings sort as text.
fn parse_datetime_ms(s: &str) -> Option<DateTime<Utc>> {
    if s.starts_with("/Date(") { parse_datetime(s) } else { None }
}

/// `order=Field [ASC|DESC][, Field2 ...]`.
pub fn sort(items: &mut [Value], order: &str) -> Result<(), String> {
    let mut keys = vec![];
    for part in order.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut words = part.split_whitespace();
        let field = words.next().unwrap_or_default().to_string();
        let desc = match words.next() {
            None => false,
            Some(w) if w.eq_ignore_ascii_case("asc") => false,
            Some(w) if w.eq_ignore_ascii_case("desc") => true,
            Some(w) => return Err(format!("unknown sort direction '{w}'")),
        };
        keys.push((field, desc));
    }
    items.sort_by(|a, b| {
        for (field, desc) in &keys {
            let o = order_key_cmp(lookup(a, field), lookup(b, field));
            let o = if *desc { o.reverse() } else { o };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    Ok(())
}

/// Slices a page; returns the page and Xero's `pagination` object.
pub fn paginate(items: Vec<Value>, page: u64, page_size: u64) -> (Vec<Value>, Value) {
    let item_count = items.len() as u64;
    let page_count = item_count.div_ceil(page_size);
    let start = usize::try_from((page - 1).saturating_mul(page_size)).unwrap_or(usize::MAX);
    let slice: Vec<Value> = items.into_iter().skip(start).take(page_size as usize).collect();
    (slice, json!({"page": page, "pageSize": page_size, "pageCount": page_count, "itemCount": item_count}))
}
