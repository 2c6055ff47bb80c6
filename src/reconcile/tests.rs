use super::*;
use crate::fixtures;
use crate::resolve::{Discovered, resolve};
use crate::status::Reason;

#[test]
fn outcomes_follow_the_round() {
    let ok = resolve(&fixtures::article(), &fixtures::gathered());
    assert_eq!(pipeline::outcome(&ok, None, true), Outcome::Synced);
    assert_eq!(pipeline::outcome(&ok, None, false), Outcome::RollingOut);
    let forbidden = Error::Kube(kube::Error::Api(Box::new(
        kube::core::Status::failure("no", "Forbidden").with_code(403),
    )));
    assert_eq!(
        pipeline::outcome(&ok, Some(&forbidden), false),
        Outcome::Retry(RetryCause::Apply(ErrorClass::KubeForbidden))
    );
    let mut throttled = fixtures::gathered();
    throttled.database = Some(Discovered::Failed {
        reason: Reason::AwsThrottled,
        message: "slow down".into(),
    });
    let r = resolve(&fixtures::article(), &throttled);
    assert_eq!(
        pipeline::outcome(&r, None, false),
        Outcome::Retry(RetryCause::Aws)
    );
    let mut missing = fixtures::gathered();
    missing.secrets.problems.cache = Some("Secret obs/redis-auth does not exist".into());
    let r = resolve(&fixtures::article(), &missing);
    assert_eq!(
        pipeline::outcome(&r, None, false),
        Outcome::Retry(RetryCause::Unresolved)
    );
    assert_eq!(
        RetryCause::Apply(ErrorClass::KubeInvalid).metric_label(),
        "kube_invalid"
    );
}
