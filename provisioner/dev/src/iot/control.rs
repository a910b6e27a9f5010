//! The IoT control-plane calls groupcast makes (AttachPolicy, DetachPolicy, ListAttachedPolicies,
//! things for the user → identity mapping …), answered from the stack's attachment state, so
//! `provisioner iot grant` and the iot-grant function work against the local stack. (To be built.)

use crate::Stack;
use crate::aws::{AwsRequest, AwsResponse};

/// Answers `req` if it is an IoT control-plane call; `None` lets the AWS port try other services.
pub async fn handle(stack: &Stack, req: &AwsRequest) -> Option<AwsResponse> {
    let _ = (stack, req);
    None
}
