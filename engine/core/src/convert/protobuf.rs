//! Reading protobuf fields straight from a message's bytes, for the
//! converters that build rows without decoding a request into prost's
//! structs first ([`super::spans_wire`]).
//!
//! The reader accepts exactly what prost accepts or less: whatever it does
//! not handle the way prost does (a group, a varint longer than prost
//! reads, a field number of 0, a known field with another wire type than
//! its declaration, invalid UTF-8 in a string) is [`Unsure`], and the
//! caller leaves the whole request to prost, which decodes it or says
//! precisely what is wrong with it.

/// The bytes hold something the direct reader leaves to prost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsure;

/// One field's value, as its wire type carries it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32(u32),
}

impl<'a> Value<'a> {
    /// A `bytes` field or an embedded message.
    #[inline]
    pub fn bytes(self) -> Result<&'a [u8], Unsure> {
        match self {
            Value::Bytes(b) => Ok(b),
            _ => Err(Unsure),
        }
    }

    /// A `string` field (valid UTF-8, as prost requires).
    #[inline]
    pub fn str(self) -> Result<&'a str, Unsure> {
        std::str::from_utf8(self.bytes()?).map_err(|_| Unsure)
    }

    /// A varint field as its 64 bits (`uint64`, `int64`, `bool` != 0).
    #[inline]
    pub fn varint(self) -> Result<u64, Unsure> {
        match self {
            Value::Varint(v) => Ok(v),
            _ => Err(Unsure),
        }
    }

    /// A `uint32` field: prost keeps the low 32 bits.
    #[inline]
    pub fn uint32(self) -> Result<u32, Unsure> {
        self.varint().map(|v| v as u32)
    }

    /// An `int32` or enum field: prost keeps the low 32 bits.
    #[inline]
    pub fn int32(self) -> Result<i32, Unsure> {
        self.varint().map(|v| v as i32)
    }

    /// A `fixed64` field (or the bits of a `double`).
    #[inline]
    pub fn fixed64(self) -> Result<u64, Unsure> {
        match self {
            Value::Fixed64(v) => Ok(v),
            _ => Err(Unsure),
        }
    }

    /// A `fixed32` field.
    #[inline]
    pub fn fixed32(self) -> Result<u32, Unsure> {
        match self {
            Value::Fixed32(v) => Ok(v),
            _ => Err(Unsure),
        }
    }
}

/// The fields of one message, in the order they are on the wire.
pub(crate) struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    #[inline]
    pub fn new(message: &'a [u8]) -> Self {
        Fields { rest: message }
    }

    /// The next field's number and value; `None` at the end.
    #[inline]
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, Unsure> {
        if self.rest.is_empty() {
            return Ok(None);
        }
        // prost refuses a key above u32::MAX, even when its field number
        // alone would fit.
        let key = u32::try_from(self.varint()?).map_err(|_| Unsure)?;
        let tag = key >> 3;
        if tag == 0 {
            return Err(Unsure);
        }
        let value = match key & 7 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take_array()?)),
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| Unsure)?;
                if len > self.rest.len() {
                    return Err(Unsure);
                }
                let (bytes, rest) = self.rest.split_at(len);
                self.rest = rest;
                Value::Bytes(bytes)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.take_array()?)),
            // Groups, and the wire types protobuf does not define.
            _ => return Err(Unsure),
        };
        Ok(Some((tag, value)))
    }

    #[inline]
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], Unsure> {
        let (head, rest) = self.rest.split_first_chunk::<N>().ok_or(Unsure)?;
        self.rest = rest;
        Ok(*head)
    }

    /// A varint of at most ten bytes whose tenth byte is 0 or 1, as prost
    /// reads them.
    #[inline]
    fn varint(&mut self) -> Result<u64, Unsure> {
        let mut value = 0u64;
        for (i, &byte) in self.rest.iter().enumerate().take(10) {
            if i == 9 && byte > 1 {
                return Err(Unsure);
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                self.rest = &self.rest[i + 1..];
                return Ok(value);
            }
        }
        Err(Unsure)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Guarantees: varints, fixed-width numbers and length-delimited
    /// fields read back what prost wrote, and a truncated or overlong
    /// varint is left to prost.
    #[test]
    fn reads_what_prost_writes() {
        let mut buf = Vec::new();
        prost::encoding::uint64::encode(1, &u64::MAX, &mut buf);
        prost::encoding::fixed64::encode(2, &7, &mut buf);
        prost::encoding::string::encode(3, &"héllo".to_string(), &mut buf);
        prost::encoding::fixed32::encode(4, &9, &mut buf);
        prost::encoding::int32::encode(5, &-3, &mut buf);
        let mut f = Fields::new(&buf);
        let mut next = || {
            f.next_field()
                .expect("well formed")
                .expect("a field is left")
        };
        let (t, v) = next();
        assert_eq!((t, v.varint()), (1, Ok(u64::MAX)));
        let (t, v) = next();
        assert_eq!((t, v.fixed64()), (2, Ok(7)));
        let (t, v) = next();
        assert_eq!((t, v.str()), (3, Ok("héllo")));
        let (t, v) = next();
        assert_eq!((t, v.fixed32()), (4, Ok(9)));
        let (t, v) = next();
        assert_eq!((t, v.int32()), (5, Ok(-3)));
        assert_eq!(f.next_field().map(|f| f.is_none()), Ok(true));

        // Eleven continuation bytes: prost refuses, so the reader is unsure.
        let overlong = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ];
        assert!(Fields::new(&overlong).next_field().is_err());
        assert!(prost::encoding::decode_varint(&mut &overlong[1..]).is_err());
        // A length past the end.
        assert!(Fields::new(&[0x1a, 0x05, b'a']).next_field().is_err());
        // A key above u32::MAX (field number 2^29 + 1, varint).
        let wide = [0x88, 0x80, 0x80, 0x80, 0x10, 0x01];
        assert!(Fields::new(&wide).next_field().is_err());
        assert!(prost::encoding::decode_key(&mut &wide[..]).is_err());
        // A field number of 0, and a group.
        assert!(Fields::new(&[0x00, 0x01]).next_field().is_err());
        assert!(Fields::new(&[0x0b, 0x0c]).next_field().is_err());
        // Invalid UTF-8 in a string.
        let mut f = Fields::new(&[0x1a, 0x01, 0xff]);
        let (_, v) = f.next_field().expect("framed").expect("a field");
        assert_eq!(v.str(), Err(Unsure));
    }
}
