//! Idempotency keys of create requests (AIP-155): a client's `request_id`, scoped by who sent
//! it, so a retry with the same key gets the first result and creates nothing, and two callers
//! choosing the same `request_id` can neither collide nor see each other's results. Each store
//! keeps the keys it was given beside what they created.

use crate::auth::Caller;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    /// `member:<id>` or `service:<name>`.
    pub caller: String,
    /// A checked id.
    pub request_id: String,
}

impl IdempotencyKey {
    /// The key of `request_id` (already checked like an id) sent by `caller`.
    pub fn new(caller: &Caller, request_id: String) -> Self {
        let caller = match caller {
            Caller::Member(id) => format!("member:{id}"),
            Caller::Service(name) => format!("service:{name}"),
        };
        Self { caller, request_id }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_scoped_by_the_kind_and_name_of_their_caller() {
        let member = IdempotencyKey::new(&Caller::Member("a".into()), "r1".into());
        let service = IdempotencyKey::new(&Caller::Service("a".into()), "r1".into());
        assert_ne!(member, service);
        assert_eq!(member.caller, "member:a");
        assert_eq!(service.request_id, "r1");
    }
}
