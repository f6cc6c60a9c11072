//! The protobuf codec of every pronet service and client: tonic-prost's, except that a message
//! that cannot be decoded is the sender's fault (INVALID_ARGUMENT), not an INTERNAL error as
//! tonic-prost reports it. Hostile bytes must never look like a server bug.

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder};
use tonic::Status;
use tonic_prost::{ProstCodec, ProstEncoder};

#[derive(Debug, Clone)]
pub struct ProtoCodec<T, U> {
    _pd: PhantomData<(T, U)>,
}

impl<T, U> Default for ProtoCodec<T, U> {
    fn default() -> Self {
        Self { _pd: PhantomData }
    }
}

impl<T, U> Codec for ProtoCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProtoDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::default().encoder()
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProtoDecoder { _pd: PhantomData }
    }
}

#[derive(Debug, Clone)]
pub struct ProtoDecoder<U> {
    _pd: PhantomData<U>,
}

impl<U: Message + Default> Decoder for ProtoDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| Status::invalid_argument(format!("message could not be decoded: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::post::v1::GetPostRequest;

    #[test]
    fn garbage_is_invalid_argument() {
        // Field 1 declared as a 10-byte string but only 2 bytes follow.
        let garbage: &[u8] = &[0x0a, 0x0a, 0x41, 0x42];
        let err = GetPostRequest::decode(garbage).unwrap_err();
        let status = Status::invalid_argument(format!("message could not be decoded: {err}"));
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
    }
}
