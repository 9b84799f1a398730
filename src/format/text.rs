//! Text formats: tokens compiled into an anchored regex, a probe and a fast path.
//!
//! The regex is the definition: one capture group per operator, lazy `.*?` for
//! free text (a value ends where the literal after it matches, so XFCC's
//! unescaped quotes are fine), `-|[0-9]+` for numbers, an RFC 3339 shape for
//! the default `%START_TIME%`. The fast path walks the same plan over the
//! positions the structural scanner marks ([`super::scan`]: the bytes a
//! literal after a free-text value can start with) and returns exactly what
//! the regex would whenever it succeeds (each step takes the regex's
//! first-preference choice); when it fails, the regex decides. The probe (the format's first two operators and the literal
//! after them) tells a damaged access entry from a line that is not one.

use super::line_parser::Outcome;
use super::operator::ValueClass;
use super::scan::{ByteSet, Cursor};
use super::start_time::StartTime;
use super::token::Token;
use super::{AccessEntry, Field};
use memchr::memmem;
use regex_automata::util::captures::Captures;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, meta};
use std::fmt::Write as _;

/// Operators the probe covers (the lab's `[<time>] "<method> `).
const PROBE_OPERATORS: usize = 2;

/// Literals checked for presence before the regex runs: the longest few say
/// most (` mTLS_Origin: "` is in no Istio line) for a few nanoseconds each.
const REQUIRED_LITERALS: usize = 8;

/// One operator of the plan and the literal that follows it.
#[derive(Debug)]
pub(crate) struct Step {
    /// The operator as written (`%REQ(X-FORWARDED-FOR)%`), for diagnostics.
    pub(crate) name: Box<str>,
    pub(crate) field: Option<Field>,
    pub(crate) class: ValueClass,
    pub(crate) tail: Box<[u8]>,
}

/// A compiled text format.
#[derive(Debug)]
pub(crate) struct TextFormat {
    /// The literal before the first operator.
    head: Box<[u8]>,
    steps: Box<[Step]>,
    /// False when a free-text value is directly followed by another value:
    /// only the regex can find that boundary.
    fast: bool,
    /// The bytes where a searched value can end: the first byte of each
    /// literal after a free-text or token value, and a token's stop bytes.
    scan: ByteSet,
    full: meta::Regex,
    probe: meta::Regex,
    start_time: StartTime,
    /// The format's longest distinct literals: a line lacking one cannot
    /// match, so the regex is skipped (see [`TextFormat::attempt`]).
    required: Box<[memmem::Finder<'static>]>,
    /// The last literal of the format with a word in it, when it is not
    /// `required[0]`: where a format extends another (`strictly` is `lab`
    /// plus ` peer: "..."`), the longest literal is in both and only this
    /// one turns the shorter format's lines away before the walk.
    last_word: Option<memmem::Finder<'static>>,
    /// The literal right before `%DOWNSTREAM_PEER_URI_SAN%` (the lab's
    /// ` mTLS_Origin: "`): a line carrying it twice is ambiguous evidence.
    evidence_marker: Option<memmem::Finder<'static>>,
    /// Bytes of literal text in the format: how specific a match of it is.
    literal_bytes: usize,
}

/// Per-thread matching state for one [`TextFormat`].
#[derive(Debug)]
pub(crate) struct TextCache {
    full: meta::Cache,
    caps: Captures,
    probe: meta::Cache,
}

impl TextFormat {
    /// Compiles tokens into the plan, the full regex and the probe.
    pub(crate) fn compile(tokens: &[Token]) -> Result<TextFormat, String> {
        let mut head = Vec::new();
        let mut steps: Vec<Step> = Vec::new();
        let mut start_time = StartTime::Absent;
        let mut seen = [false; Field::COUNT];
        for token in tokens {
            match token {
                Token::Literal(text) => match steps.last_mut() {
                    Some(step) => step.tail = [&step.tail[..], text].concat().into(),
                    None => head.extend_from_slice(text),
                },
                Token::Operator(op) => {
                    // A field logged twice is read from its first occurrence.
                    let field = op
                        .field()
                        .filter(|f| !std::mem::replace(&mut seen[*f as usize], true));
                    if field == Some(Field::StartTime) {
                        start_time = StartTime::for_operator(op);
                    }
                    steps.push(Step {
                        name: op.to_string().into(),
                        field,
                        class: op.class(),
                        tail: Box::default(),
                    });
                }
            }
        }
        let fast = steps.iter().enumerate().all(|(i, s)| {
            i + 1 == steps.len()
                || !matches!(s.class, ValueClass::Any | ValueClass::Token)
                || !s.tail.is_empty()
        });

        let mut full = String::from("(?s-u)");
        push_literal(&mut full, &head);
        for step in &steps {
            let _ = write!(full, "({})", class_pattern(step.class));
            push_literal(&mut full, &step.tail);
        }
        full.push_str(r"\z");

        let mut probe = String::from("(?s-u)");
        push_literal(&mut probe, &head);
        for step in steps.iter().take(PROBE_OPERATORS) {
            let _ = write!(probe, "(?:{})", class_pattern(step.class));
            push_literal(&mut probe, &step.tail);
        }

        let literals = std::iter::once(&head[..]).chain(steps.iter().map(|s| &s.tail[..]));
        let literal_bytes = literals.clone().map(<[u8]>::len).sum();
        let mut distinct: Vec<&[u8]> = literals.filter(|l| l.len() >= 3).collect();
        distinct.sort_by(|a, b| b.len().cmp(&a.len()).then(a.cmp(b)));
        distinct.dedup();
        let distinct_first: Option<Vec<u8>> = distinct.first().map(|l| l.to_vec());
        let required = distinct
            .into_iter()
            .take(REQUIRED_LITERALS)
            .map(|l| memmem::Finder::new(l).into_owned())
            .collect();
        let has_word = |l: &&[u8]| l.len() >= 3 && l.iter().any(u8::is_ascii_alphabetic);
        let last_word = std::iter::once(&head[..])
            .chain(steps.iter().map(|s| &s.tail[..]))
            .rfind(has_word)
            .filter(|l| distinct_first.as_deref() != Some(*l))
            .map(|l| memmem::Finder::new(l).into_owned());
        let evidence_marker = steps
            .iter()
            .position(|s| s.field == Some(Field::PeerUriSan))
            .map(|i| {
                if i == 0 {
                    &head[..]
                } else {
                    &steps[i - 1].tail[..]
                }
            })
            // Only a word (` mTLS_Origin: "`, ` peer=`) marks the field; a bare
            // space or quote occurs in most values.
            .filter(|l| l.len() >= 3 && l.iter().any(u8::is_ascii_alphabetic))
            .map(|l| memmem::Finder::new(l).into_owned());
        Ok(TextFormat {
            scan: scan_set(&steps),
            fast,
            full: build_regex(&full)?,
            probe: build_regex(&probe)?,
            head: head.into(),
            steps: steps.into(),
            start_time,
            required,
            last_word,
            evidence_marker,
            literal_bytes,
        })
    }

    /// The literal before the first operator.
    pub(crate) fn head(&self) -> &[u8] {
        &self.head
    }

    /// The operators in order, each with the literal after it.
    pub(crate) fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Bytes of literal text a match of this format accounts for (its specificity).
    pub(crate) fn literal_bytes(&self) -> usize {
        self.literal_bytes
    }

    /// How the format reads `%START_TIME%`.
    pub(crate) fn start_time(&self) -> &StartTime {
        &self.start_time
    }

    /// Returns true if and only if the format fills `field`.
    pub(crate) fn logs(&self, field: Field) -> bool {
        self.steps.iter().any(|s| s.field == Some(field))
    }

    pub(crate) fn new_cache(&self) -> TextCache {
        TextCache {
            full: self.full.create_cache(),
            caps: self.full.create_captures(),
            probe: self.probe.create_cache(),
        }
    }

    /// Tries the format on a line: the fast path, then (when every required
    /// literal occurs in the line) the full regex.
    ///
    /// [`Outcome::No`] means only "not an entry of this format"; whether the
    /// line looks like one is asked separately ([`TextFormat::probe_matches`]),
    /// and only when no format matched: a line tried against several formats
    /// pays for one probe at most, not one per format.
    ///
    /// `entry` must come in empty; on [`Outcome::Access`] it holds the values.
    pub(crate) fn attempt<'a>(
        &self,
        cache: &mut TextCache,
        line: &'a [u8],
        entry: &mut AccessEntry<'a>,
    ) -> Outcome {
        self.attempt_with(cache, line, entry, true)
    }

    /// [`TextFormat::attempt`] with the regex alone: what the fast path must agree with.
    #[cfg(test)]
    pub(crate) fn attempt_regex_only<'a>(
        &self,
        cache: &mut TextCache,
        line: &'a [u8],
        entry: &mut AccessEntry<'a>,
    ) -> Outcome {
        self.attempt_with(cache, line, entry, false)
    }

    #[inline(always)]
    fn attempt_with<'a>(
        &self,
        cache: &mut TextCache,
        line: &'a [u8],
        entry: &mut AccessEntry<'a>,
        fast: bool,
    ) -> Outcome {
        let mut record = |i: usize, start: usize, end: usize| {
            if let Some(field) = self.steps[i].field {
                entry.set(field, &line[start..end]);
            }
        };
        // The longest literal first: one memmem (~2% of a match) turns away
        // most lines of other formats before the walk (several memmem) starts.
        if self
            .required
            .first()
            .is_some_and(|r| r.find(line).is_none())
        {
            return Outcome::No;
        }
        // One more memmem when a format extends another: lab lines are tried
        // against `strictly` first, and its walk would fail only at the end
        // (fixtures/bench/lab.log, 1,003 lines, every built-in tried, best of 5,
        // debug build on a shared 2-core machine: 126 ms → 63-75 ms; 50-60 ms
        // without the `strictly` format).
        if self
            .last_word
            .as_ref()
            .is_some_and(|r| r.find(line).is_none())
        {
            return Outcome::No;
        }
        if !(fast && self.fast_match(line, &mut record)) {
            // Every literal must occur in a matching line; the regex scan is the costly part.
            if self.required.iter().skip(1).any(|r| r.find(line).is_none()) {
                return Outcome::No;
            }
            // Every group takes part in a match, so a regex match overwrites
            // whatever the failed walk recorded.
            if !self.regex_match(cache, line, &mut record) {
                return Outcome::No;
            }
        }
        // A client certificate claimed by a line whose marker (` mTLS_Origin: "`)
        // occurs twice: a header value (X-Forwarded-For, XFCC) may carry a
        // forged copy and the split cannot tell which is Envoy's, so the line
        // is not trusted as mTLS (issue 7 item 2).
        if entry.get(Field::PeerUriSan).is_some()
            && let Some(marker) = &self.evidence_marker
            && marker.find_iter(line).nth(1).is_some()
        {
            return Outcome::LooksLike;
        }
        match self.start_time.read(entry.raw(Field::StartTime)) {
            Ok(ms) => entry.start_time_ms = ms,
            // A START_TIME that is no real date (month 13, February 31st): damaged.
            Err(()) => return Outcome::LooksLike,
        }
        Outcome::Access
    }

    /// Returns true if and only if the line starts like an entry of this format.
    pub(crate) fn probe_matches(&self, cache: &mut TextCache, line: &[u8]) -> bool {
        line.starts_with(&self.head)
            && self
                .probe
                .is_match_with(&mut cache.probe, &Input::new(line).anchored(Anchored::Yes))
    }

    /// Walks the plan without backtracking; `span(step, start, end)` gets each value.
    ///
    /// Each step takes the regex's first choice: free text up to the first
    /// occurrence of its literal (lazy), numbers and times as long as possible
    /// (greedy). So a walk that reaches the end of the line found the
    /// leftmost-first match; a walk that gets stuck proves nothing and the
    /// caller asks the regex.
    pub(crate) fn fast_match(
        &self,
        line: &[u8],
        mut span: impl FnMut(usize, usize, usize),
    ) -> bool {
        if !self.fast || !line.starts_with(&self.head) {
            return false;
        }
        let mut pos = self.head.len();
        let mut cursor = Cursor::new(line, &self.scan);
        let n = self.steps.len();
        for (i, step) in self.steps.iter().enumerate() {
            let last = i + 1 == n;
            let tail = &step.tail[..];
            let end = match step.class {
                ValueClass::Any | ValueClass::Token if last => {
                    // The value must end where the final literal ends the line.
                    if line.len() < pos + tail.len() || !line.ends_with(tail) {
                        return false;
                    }
                    let end = line.len() - tail.len();
                    // A token with a space or quote in it: the regex decides.
                    if step.class == ValueClass::Token
                        && memchr::memchr2(b' ', b'"', &line[pos..end]).is_some()
                    {
                        return false;
                    }
                    end
                }
                ValueClass::Any | ValueClass::Token => {
                    // `fast` guarantees a literal after every searched value, and
                    // its first byte is in the scan set: every occurrence of the
                    // literal starts at a marked position, so the first marked
                    // position where it matches is memmem's answer.
                    let first = tail[0];
                    let token = step.class == ValueClass::Token;
                    let mut from = pos;
                    loop {
                        let Some(p) = cursor.next_from(from) else {
                            return false;
                        };
                        let b = line[p];
                        if b == first && line[p..].starts_with(tail) {
                            break p;
                        }
                        // A token with a space or quote before the first
                        // occurrence of its literal has no match from here:
                        // the regex may find another split.
                        if token && is_token_stop(b) {
                            return false;
                        }
                        from = p + 1;
                    }
                }
                ValueClass::Number | ValueClass::Rfc3339 => {
                    let end = match step.class {
                        ValueClass::Number => number_end(line, pos),
                        _ => rfc3339_end(line, pos),
                    };
                    let Some(end) = end else { return false };
                    let rest = &line[end..];
                    if !rest.starts_with(tail) || (last && rest.len() != tail.len()) {
                        return false;
                    }
                    end
                }
            };
            span(i, pos, end);
            pos = end + tail.len();
        }
        pos == line.len()
    }

    /// Matches the full anchored regex; `span(step, start, end)` gets each value.
    pub(crate) fn regex_match(
        &self,
        cache: &mut TextCache,
        line: &[u8],
        mut span: impl FnMut(usize, usize, usize),
    ) -> bool {
        let input = Input::new(line).anchored(Anchored::Yes);
        self.full
            .search_captures_with(&mut cache.full, &input, &mut cache.caps);
        if !cache.caps.is_match() {
            return false;
        }
        for i in 0..self.steps.len() {
            if let Some(s) = cache.caps.get_group(i + 1) {
                span(i, s.start, s.end);
            }
        }
        true
    }
}

/// The regex for a value class; it must agree with [`number_end`] and [`rfc3339_end`].
pub(crate) fn class_pattern(class: ValueClass) -> &'static str {
    match class {
        ValueClass::Any => ".*?",
        ValueClass::Token => r"[^\x20\x22]*?",
        ValueClass::Number => "-|[0-9]+",
        ValueClass::Rfc3339 => {
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\\.[0-9]+)?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
        }
    }
}

/// Appends a literal byte string to a pattern, every non-alphanumeric byte as `\xHH`.
pub(crate) fn push_literal(pattern: &mut String, literal: &[u8]) {
    for &b in literal {
        if b.is_ascii_alphanumeric() {
            pattern.push(b as char);
        } else {
            let _ = write!(pattern, "\\x{b:02X}");
        }
    }
}

/// Builds a byte-oriented regex: lines may be invalid UTF-8.
pub(crate) fn build_regex(pattern: &str) -> Result<meta::Regex, String> {
    meta::Regex::builder()
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .configure(meta::Regex::config().utf8_empty(false))
        .build(pattern)
        .map_err(|e| format!("cannot compile the format into a matcher: {e}"))
}

/// The scan set of a plan: the first byte of the literal after each searched
/// (free-text or token, not last) value, plus a token's stop bytes.
fn scan_set(steps: &[Step]) -> ByteSet {
    let searched = || {
        steps[..steps.len().saturating_sub(1)]
            .iter()
            .filter(|s| matches!(s.class, ValueClass::Any | ValueClass::Token))
    };
    let firsts = searched().filter_map(|s| s.tail.first().copied());
    let stops = searched()
        .any(|s| s.class == ValueClass::Token)
        .then_some([b' ', b'"'])
        .into_iter()
        .flatten();
    ByteSet::new(firsts.chain(stops))
}

/// Returns true if and only if `b` cannot occur in a [`ValueClass::Token`] value.
fn is_token_stop(b: u8) -> bool {
    b == b' ' || b == b'"'
}

/// `-|[0-9]+` from `pos`: the alternation prefers `-`, the digits are greedy.
fn number_end(line: &[u8], pos: usize) -> Option<usize> {
    let rest = line.get(pos..)?;
    if rest.first() == Some(&b'-') {
        return Some(pos + 1);
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    (digits > 0).then_some(pos + digits)
}

/// The RFC 3339 class from `pos`, each optional part taken when present (greedy).
pub(crate) fn rfc3339_end(line: &[u8], pos: usize) -> Option<usize> {
    let s = line.get(pos..)?;
    const SHAPE: &[u8; 19] = b"0000-00-00T00:00:00";
    if s.len() < SHAPE.len() {
        return None;
    }
    for (&c, &want) in s.iter().zip(SHAPE) {
        let ok = if want == b'0' {
            c.is_ascii_digit()
        } else {
            c == want
        };
        if !ok {
            return None;
        }
    }
    let mut i = SHAPE.len();
    if s.get(i) == Some(&b'.') && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
        i += 1;
        while s.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
    }
    let digit = |j: usize| s.get(j).is_some_and(u8::is_ascii_digit);
    match s.get(i) {
        Some(b'Z') => i += 1,
        Some(b'+' | b'-')
            if digit(i + 1)
                && digit(i + 2)
                && s.get(i + 3) == Some(&b':')
                && digit(i + 4)
                && digit(i + 5) =>
        {
            i += 6
        }
        _ => {}
    }
    Some(pos + i)
}
