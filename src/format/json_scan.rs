//! A key scanner for JSON access-log lines: one pass over the raw bytes of
//! the top-level object, borrowing the values of the keys a format reads and
//! skipping everything else without building anything (issue 11 item 2).
//!
//! It accepts and rejects exactly what the serde_json path in
//! [`super::json`] accepts and rejects (serde_json 1.0's `from_slice`,
//! `deserialize_map` with a `&str` key seed, `&RawValue` for known keys and
//! `IgnoredAny` for the rest, then `end()`), which is what the property tests
//! in `json_scan_tests.rs` check against that path as the oracle:
//!
//! - whitespace is `' '`, `\t`, `\n`, `\r` only; numbers, literals, arrays
//!   and objects follow RFC 8259 (no trailing commas, no leading zeros);
//! - strings refuse control characters and bad escapes; `\u` needs four hex
//!   digits but any code unit (lone surrogates too) is accepted in values;
//! - keys and the whole raw text of a known key's value must be UTF-8;
//!   ignored values are not checked for UTF-8 (serde_json skips them bytewise);
//! - nesting depth is unbounded in serde_json's skipping: this scanner keeps
//!   128 levels on the stack and answers [`Scan::Unsure`] deeper.
//!
//! Keys with escapes (which serde_json decodes strictly before the lookup)
//! also answer [`Scan::Unsure`]: no proxy writes them, and the caller then
//! asks serde_json, so rare lines cost what they cost before.

use super::Field;

/// What scanning one line found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scan {
    /// One valid JSON object; `seen` says whether an anchor key was among its keys.
    Object { seen: bool },
    /// Not valid JSON, or not one object.
    Invalid,
    /// A case the scanner leaves to serde_json (escaped keys, nesting past 128 levels).
    Unsure,
}

/// Keys longer than this share one bucket.
const MAX_LEN: usize = 48;

/// The keys a format reads, bucketed by length so a lookup compares few keys.
#[derive(Debug)]
pub(crate) struct KeyTable {
    /// `entries[starts[n]..starts[n + 1]]` are the keys of length `n` (the last bucket: longer).
    starts: [u16; MAX_LEN + 3],
    entries: Box<[(Box<[u8]>, Field)]>,
}

impl KeyTable {
    /// A table over `keys`; for a key given twice, the first wins, as in a linear search.
    pub(crate) fn new<'k>(keys: impl IntoIterator<Item = (&'k str, Field)>) -> KeyTable {
        let mut entries: Vec<(Box<[u8]>, Field)> = keys
            .into_iter()
            .map(|(k, f)| (k.as_bytes().into(), f))
            .collect();
        // Stable: keys of one length keep their order, so the first still wins.
        entries.sort_by_key(|(k, _)| bucket(k.len()));
        let mut starts = [0u16; MAX_LEN + 3];
        for (n, start) in starts.iter_mut().enumerate() {
            *start = entries.partition_point(|(k, _)| bucket(k.len()) < n) as u16;
        }
        KeyTable {
            starts,
            entries: entries.into(),
        }
    }

    /// The field a key maps to.
    #[inline]
    pub(crate) fn lookup(&self, key: &[u8]) -> Option<Field> {
        let b = bucket(key.len());
        let range = self.starts[b] as usize..self.starts[b + 1] as usize;
        self.entries[range]
            .iter()
            .find(|(k, _)| **k == *key)
            .map(|(_, f)| *f)
    }
}

fn bucket(len: usize) -> usize {
    len.min(MAX_LEN + 1)
}

/// Scans `line` as one JSON object, filling `out` with the raw value of each
/// field's first key (strings still quoted and escaped, as serde_json's
/// `RawValue`). `out` is meaningful only on [`Scan::Object`].
pub(crate) fn scan<'a>(
    line: &'a [u8],
    table: &KeyTable,
    anchors: u32,
    out: &mut [Option<&'a [u8]>; Field::COUNT],
) -> Scan {
    let mut c = Cursor { b: line, i: 0 };
    match c.object(table, anchors, out) {
        Ok(seen) => Scan::Object { seen },
        Err(Stop::Invalid) => Scan::Invalid,
        Err(Stop::Unsure) => Scan::Unsure,
    }
}

/// Why a scan stopped early.
enum Stop {
    Invalid,
    Unsure,
}

type Step<T = ()> = Result<T, Stop>;

struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips JSON whitespace (not form feed or vertical tab: serde_json refuses those).
    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, byte: u8) -> Step {
        if self.peek() != Some(byte) {
            return Err(Stop::Invalid);
        }
        self.i += 1;
        Ok(())
    }

    fn object(
        &mut self,
        table: &KeyTable,
        anchors: u32,
        out: &mut [Option<&'a [u8]>; Field::COUNT],
    ) -> Step<bool> {
        let mut seen = false;
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
        } else {
            loop {
                self.eat(b'"')?;
                let start = self.i;
                if self.string()? {
                    return Err(Stop::Unsure);
                }
                let key = &self.b[start..self.i - 1];
                if !key.is_ascii() && std::str::from_utf8(key).is_err() {
                    return Err(Stop::Invalid);
                }
                let field = table.lookup(key);
                self.ws();
                self.eat(b':')?;
                self.ws();
                let start = self.i;
                self.value()?;
                if let Some(field) = field {
                    let raw = &self.b[start..self.i];
                    if !raw.is_ascii() && std::str::from_utf8(raw).is_err() {
                        return Err(Stop::Invalid);
                    }
                    out[field as usize].get_or_insert(raw);
                    seen |= anchors & (1 << field as u32) != 0;
                }
                self.ws();
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        self.ws();
                    }
                    Some(b'}') => {
                        self.i += 1;
                        break;
                    }
                    _ => return Err(Stop::Invalid),
                }
            }
        }
        self.ws();
        if self.i != self.b.len() {
            return Err(Stop::Invalid);
        }
        Ok(seen)
    }

    /// Skips a string body after its opening quote; returns whether it held escapes.
    #[inline]
    fn string(&mut self) -> Step<bool> {
        let mut escaped = false;
        loop {
            self.i = find_special(self.b, self.i);
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.escape()?;
                }
                // A control character, or the end of the line inside the string.
                _ => return Err(Stop::Invalid),
            }
        }
    }

    /// Skips one escape at a backslash, as serde_json's `ignore_escape`:
    /// `\u` takes any four hex digits, surrogate or not.
    fn escape(&mut self) -> Step {
        match self.b.get(self.i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
            Some(b'u') => {
                let hex = self.b.get(self.i + 2..self.i + 6).ok_or(Stop::Invalid)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return Err(Stop::Invalid);
                }
                self.i += 6;
            }
            _ => return Err(Stop::Invalid),
        }
        Ok(())
    }

    /// Skips one value at the cursor (whitespace already skipped), nested ones
    /// iteratively: `stack` holds one bit per open container (1: object).
    fn value(&mut self) -> Step {
        let mut stack: u128 = 0;
        let mut depth = 0u32;
        'value: loop {
            self.ws();
            match self.peek() {
                Some(b'"') => {
                    self.i += 1;
                    self.string()?;
                }
                Some(b'n') => self.literal(b"null")?,
                Some(b't') => self.literal(b"true")?,
                Some(b'f') => self.literal(b"false")?,
                Some(b'-' | b'0'..=b'9') => self.number()?,
                Some(open @ (b'[' | b'{')) => {
                    if depth == u128::BITS {
                        return Err(Stop::Unsure);
                    }
                    let object = open == b'{';
                    stack = stack << 1 | object as u128;
                    depth += 1;
                    self.i += 1;
                    self.ws();
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        self.i += 1;
                        stack >>= 1;
                        depth -= 1;
                    } else {
                        if object {
                            self.nested_key()?;
                        }
                        continue 'value;
                    }
                }
                _ => return Err(Stop::Invalid),
            }
            // A value ended: close the containers that end here.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                self.ws();
                let object = stack & 1 == 1;
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        if object {
                            self.ws();
                            self.nested_key()?;
                        }
                        continue 'value;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    _ => return Err(Stop::Invalid),
                }
                self.i += 1;
                stack >>= 1;
                depth -= 1;
            }
        }
    }

    /// A key inside a skipped object and its colon (not checked for UTF-8, as serde_json).
    fn nested_key(&mut self) -> Step {
        self.eat(b'"')?;
        self.string()?;
        self.ws();
        self.eat(b':')
    }

    fn literal(&mut self, word: &[u8]) -> Step {
        if !self.b[self.i..].starts_with(word) {
            return Err(Stop::Invalid);
        }
        self.i += word.len();
        Ok(())
    }

    fn number(&mut self) -> Step {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.i += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(Stop::Invalid);
                }
            }
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Stop::Invalid),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Ok(())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Step {
        let start = self.i;
        self.digits();
        if self.i == start {
            return Err(Stop::Invalid);
        }
        Ok(())
    }
}

/// The index of the first `"`, `\` or control character at or after `i`, or
/// the line's length: eight bytes at a time (the same test as serde_json's
/// `skip_to_escape`; a borrow only spills into bytes above a match, so the
/// lowest flagged byte is exact).
#[inline]
fn find_special(b: &[u8], mut i: usize) -> usize {
    const ONES: u64 = u64::MAX / 255;
    const HIGH: u64 = ONES << 7;
    while let Some(chunk) = b.get(i..i + 8) {
        let c = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        let ctrl = c.wrapping_sub(ONES * 0x20) & !c;
        let q = c ^ (ONES * b'"' as u64);
        let quote = q.wrapping_sub(ONES) & !q;
        let s = c ^ (ONES * b'\\' as u64);
        let slash = s.wrapping_sub(ONES) & !s;
        let found = (ctrl | quote | slash) & HIGH;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&byte) = b.get(i) {
        if byte == b'"' || byte == b'\\' || byte < 0x20 {
            break;
        }
        i += 1;
    }
    i
}
