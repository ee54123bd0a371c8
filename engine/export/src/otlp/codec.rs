//! The gRPC codec of requests encoded beforehand: the request goes as the
//! protobuf bytes it already is (`weir_core::convert::*_to_proto`), the
//! answer is decoded with prost as the generated clients decode it.

use std::marker::PhantomData;

use bytes::{BufMut as _, Bytes};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// Sends [`Bytes`] as they are and decodes an answer `U`.
#[derive(Debug)]
pub(crate) struct PreEncoded<U>(PhantomData<U>);

impl<U> Default for PreEncoded<U> {
    fn default() -> Self {
        PreEncoded(PhantomData)
    }
}

impl<U: prost::Message + Default + Send + 'static> Codec for PreEncoded<U> {
    type Encode = Bytes;
    type Decode = U;
    type Encoder = BytesEncoder;
    type Decoder = AnswerDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        AnswerDecoder(PhantomData)
    }
}

/// Copies the request's bytes into the frame.
#[derive(Debug)]
pub(crate) struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

/// Decodes the answer with prost; a body that does not decode is
/// `INTERNAL`, as with the generated clients.
#[derive(Debug)]
pub(crate) struct AnswerDecoder<U>(PhantomData<U>);

impl<U: prost::Message + Default> Decoder for AnswerDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        U::decode(src)
            .map(Some)
            .map_err(|e| Status::internal(e.to_string()))
    }
}
