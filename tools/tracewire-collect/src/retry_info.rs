//! `google.rpc.Status` with a `google.rpc.RetryInfo` detail: what an
//! OTLP/gRPC server sends to throttle a client (the receiver writes it
//! when its queue is full; the `otlp` exporter reads it). The messages are
//! declared by their field numbers in googleapis' `google/rpc/status.proto`
//! and `error_details.proto`, and `google/protobuf/{any,duration}.proto`.

use std::time::Duration;

use prost::Message as _;

/// The `type_url` of a `RetryInfo` detail.
const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

/// `google.rpc.Status` (the `grpc-status-details-bin` payload).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub(crate) code: i32,
    #[prost(string, tag = "2")]
    pub(crate) message: String,
    #[prost(message, repeated, tag = "3")]
    pub(crate) details: Vec<ProtoAny>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtoAny {
    #[prost(string, tag = "1")]
    pub(crate) type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub(crate) value: Vec<u8>,
}

/// `google.rpc.RetryInfo`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub(crate) retry_delay: Option<ProtoDuration>,
}

/// `google.protobuf.Duration`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub(crate) seconds: i64,
    #[prost(int32, tag = "2")]
    pub(crate) nanos: i32,
}

/// The encoded `google.rpc.Status` of `code` and `message` whose one
/// detail asks the client to retry after `delay`.
pub(crate) fn status_with_retry(code: i32, message: &str, delay: Duration) -> Vec<u8> {
    let retry = RetryInfo {
        retry_delay: Some(ProtoDuration {
            seconds: i64::try_from(delay.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(delay.subsec_nanos()).unwrap_or(0),
        }),
    };
    RpcStatus {
        code,
        message: message.to_owned(),
        details: vec![ProtoAny {
            type_url: RETRY_INFO_TYPE.to_owned(),
            value: retry.encode_to_vec(),
        }],
    }
    .encode_to_vec()
}

/// The `RetryInfo.retry_delay` of an encoded `google.rpc.Status`, if it
/// has one (a negative or undecodable one is none).
pub(crate) fn retry_delay(details: &[u8]) -> Option<Duration> {
    let status = RpcStatus::decode(details).ok()?;
    let info = status
        .details
        .iter()
        .find(|d| d.type_url.ends_with("/google.rpc.RetryInfo"))?;
    let delay = RetryInfo::decode(info.value.as_slice()).ok()?.retry_delay?;
    Some(
        Duration::from_secs(u64::try_from(delay.seconds).ok()?)
            + Duration::from_nanos(u64::try_from(delay.nanos).unwrap_or(0)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_receiver_writes_the_exporter_reads() {
        let details = status_with_retry(14, "full", Duration::from_millis(1500));
        assert_eq!(retry_delay(&details), Some(Duration::from_millis(1500)));
        let status = RpcStatus::decode(details.as_slice()).unwrap();
        assert_eq!((status.code, status.message.as_str()), (14, "full"));
        assert_eq!(retry_delay(b"\xff\xff"), None);
    }

    #[test]
    fn the_retry_info_is_found_among_other_details_and_negative_delays_are_none() {
        let detail = |type_url: &str, value: Vec<u8>| ProtoAny {
            type_url: type_url.into(),
            value,
        };
        let delay = |seconds, nanos| RetryInfo {
            retry_delay: Some(ProtoDuration { seconds, nanos }),
        };
        let status = |details| RpcStatus {
            code: 14,
            message: String::new(),
            details,
        };
        let two = status(vec![
            detail("type.googleapis.com/google.rpc.DebugInfo", vec![1, 2, 3]),
            detail(RETRY_INFO_TYPE, delay(2, 500_000_000).encode_to_vec()),
        ]);
        assert_eq!(
            retry_delay(&two.encode_to_vec()),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(retry_delay(&[]), None);
        let negative = status(vec![detail(RETRY_INFO_TYPE, delay(-1, 0).encode_to_vec())]);
        assert_eq!(retry_delay(&negative.encode_to_vec()), None);
    }
}
