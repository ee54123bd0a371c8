//! [`Text`]: a whole text column in one piece, as `read-text` and
//! `write-text` carry it across the boundary.

use crate::Error;
use crate::bindings::weir::plugin::batch::TextColumn;

/// Every row's value of a text column, held the way Arrow holds it: all
/// the values' bytes in one string and where each one starts.
///
/// Reading a column as `Text` ([`crate::Batch::text`]) costs three copies
/// however many rows there are; [`crate::Batch::strings`] costs an
/// allocation per row on each side. Build a new column with
/// [`Text::with_capacity`] and [`Text::push`], then write it with
/// [`crate::Batch::set_text`].
///
/// ```
/// use weir_plugin::Text;
///
/// let mut text = Text::with_capacity(3, 16);
/// text.push(Some("card 4111"));
/// text.push(None);
/// text.push(Some("ok"));
/// assert_eq!(text.len(), 3);
/// assert_eq!(text.get(0), Some("card 4111"));
/// assert_eq!(text.iter().collect::<Vec<_>>(), [Some("card 4111"), None, Some("ok")]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    /// UTF-8 in every value; checked value by value when read, so that a
    /// column is never validated twice.
    data: Vec<u8>,
    offsets: Vec<u32>,
    /// Empty until the first null; then one flag per row.
    nulls: Vec<bool>,
}

impl Default for Text {
    fn default() -> Self {
        Text::with_capacity(0, 0)
    }
}

impl Text {
    /// An empty column with room for `rows` values of `bytes` bytes in all.
    pub fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Text {
            data: Vec::with_capacity(bytes),
            offsets,
            nulls: Vec::new(),
        }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether row `row` is null (false past the end).
    pub fn is_null(&self, row: usize) -> bool {
        self.nulls.get(row).copied().unwrap_or(false)
    }

    /// Row `row`'s value; `None` where it is null or past the end (or not
    /// UTF-8, which the host never sends).
    pub fn get(&self, row: usize) -> Option<&str> {
        if self.is_null(row) {
            return None;
        }
        let start = *self.offsets.get(row)? as usize;
        let end = *self.offsets.get(row + 1)? as usize;
        std::str::from_utf8(self.data.get(start..end)?).ok()
    }

    /// Every row's value in order, `None` for a null.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|row| self.get(row))
    }

    /// All values' UTF-8 bytes end to end: a search over the whole column
    /// (for a character, say) is one pass over this.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Replaces every ASCII byte for which `matches` is true by the ASCII
    /// character `with`, across the whole column in one pass, and returns
    /// how many were replaced. The offsets stay as they are: one byte
    /// becomes one byte. This is the cheapest rewrite of a column there is
    /// (masking digits, say), with no allocation per row.
    ///
    /// `matches` sees only ASCII bytes, never the bytes of a multi-byte
    /// character. Returns 0 and changes nothing when `with` is not ASCII;
    /// use [`crate::Batch::map_strings`] for that.
    ///
    /// ```
    /// use weir_plugin::Text;
    ///
    /// let mut text: Text = [Some("pin 1234"), None, Some("naïve 7")].into_iter().collect();
    /// assert_eq!(text.replace_ascii(|b| b.is_ascii_digit(), '#'), 5);
    /// assert_eq!(text.iter().collect::<Vec<_>>(), [Some("pin ####"), None, Some("naïve #")]);
    /// ```
    pub fn replace_ascii(&mut self, matches: impl Fn(u8) -> bool, with: char) -> usize {
        let Ok(with) = u8::try_from(with) else {
            return 0;
        };
        if !with.is_ascii() {
            return 0;
        }
        let mut replaced = 0;
        // Branch-free with a byte-wide count per chunk, so that the
        // compiler does it 16 bytes at a time.
        for chunk in self.data.chunks_mut(128) {
            let mut hits: u8 = 0;
            for b in chunk {
                let hit = b.is_ascii() && matches(*b);
                hits += u8::from(hit);
                *b = if hit { with } else { *b };
            }
            replaced += usize::from(hits);
        }
        replaced
    }

    /// Appends a row: `None` is null.
    ///
    /// # Panics
    /// When the column would pass 4 GiB of text, which no batch holds.
    pub fn push(&mut self, value: Option<&str>) {
        match value {
            Some(v) => {
                self.data.extend_from_slice(v.as_bytes());
                if !self.nulls.is_empty() {
                    self.nulls.push(false);
                }
            }
            None => {
                if self.nulls.is_empty() {
                    self.nulls.resize(self.len(), false);
                }
                self.nulls.push(true);
            }
        }
        let end = u32::try_from(self.data.len()).expect("a text column holds under 4 GiB");
        self.offsets.push(end);
    }

    /// From the host's record. The offsets are checked here; the bytes
    /// when a value is read.
    pub(crate) fn from_wit(column: TextColumn) -> Result<Self, Error> {
        let TextColumn {
            data,
            offsets,
            nulls,
        } = column;
        let fits = offsets.first() == Some(&0)
            && offsets.windows(2).all(|w| w[0] <= w[1])
            && offsets.last().is_some_and(|l| *l as usize == data.len())
            && (nulls.is_empty() || nulls.len() + 1 == offsets.len());
        if !fits {
            return Err(Error::Failed(
                "the host sent a text column whose offsets do not fit its data".into(),
            ));
        }
        Ok(Text {
            data,
            offsets,
            nulls,
        })
    }

    /// Into the record `write-text` takes, without copying.
    pub(crate) fn into_wit(self) -> TextColumn {
        TextColumn {
            data: self.data,
            offsets: self.offsets,
            nulls: self.nulls,
        }
    }
}

impl<'a> FromIterator<Option<&'a str>> for Text {
    fn from_iter<I: IntoIterator<Item = Option<&'a str>>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut text = Text::with_capacity(iter.size_hint().0, 0);
        for value in iter {
            text.push(value);
        }
        text
    }
}
