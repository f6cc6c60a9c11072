//! Generated code for every pronet protobuf package, and the encoded descriptor set that the
//! servers register for reflection. Nothing else lives here.

pub mod codec;

/// `pronet.profile.v1`: profiles and the professional graph.
pub mod profile {
    pub mod v1 {
        tonic::include_proto!("pronet.profile.v1");
    }
}

/// `pronet.post.v1`: posts.
pub mod post {
    pub mod v1 {
        tonic::include_proto!("pronet.post.v1");
    }
}

/// `pronet.engagement.v1`: reactions, comments, shares and their counts.
pub mod engagement {
    pub mod v1 {
        tonic::include_proto!("pronet.engagement.v1");
    }
}

/// `pronet.feed.v1`: the ranked home feed.
pub mod feed {
    pub mod v1 {
        tonic::include_proto!("pronet.feed.v1");
    }
}

/// `pronet.events.v1`: the domain events each service writes to its outbox, and the stream
/// that serves them.
pub mod events {
    pub mod v1 {
        tonic::include_proto!("pronet.events.v1");
    }
}

/// Every pronet file and the files they import (well-known types included), encoded as a
/// `google.protobuf.FileDescriptorSet`, for the reflection services.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("pronet_descriptor");

pub use prost_types::{FieldMask, Timestamp};
