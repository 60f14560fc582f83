//! Docker's class and HTTP status of each kind of error.

use super::*;
use ErrorClass::*;

fn class_of(e: impl Into<OpsError>) -> (ErrorClass, u16) {
    let e = e.into();
    (e.class(), e.status_code())
}

#[test]
fn missing_things_are_not_found() {
    for e in [
        OpsError::from(ContainerError::NotFound { what: "c".into() }),
        ImageError::NotFound { name: "i".into() }.into(),
        StoreError::NotFound { name: "n".into() }.into(),
        VolumeError::NotFound { name: "v".into() }.into(),
        OpsError::NoSuchImage { what: "i".into() },
        DistributionError::ManifestNotFound {
            reference: "r".into(),
        }
        .into(),
    ] {
        assert_eq!((e.class(), e.status_code()), (NotFound, 404), "{e}");
    }
}

#[test]
fn state_and_name_clashes_are_conflicts() {
    for e in [
        OpsError::from(ContainerError::NameInUse {
            name: "a".into(),
            id: "b".into(),
        }),
        OpsError::RemoveActive {
            id: "a".into(),
            status: "running".into(),
        },
        OpsError::NotRunning { id: "a".into() },
        VolumeError::InUse {
            name: "v".into(),
            users: vec!["c".into()],
        }
        .into(),
        StoreError::Exists { name: "n".into() }.into(),
        OpsError::ImageInUse {
            what: "i".into(),
            container: "c".into(),
            image: "x".into(),
        },
    ] {
        assert_eq!((e.class(), e.status_code()), (Conflict, 409), "{e}");
    }
}

#[test]
fn bad_input_is_an_invalid_parameter() {
    let flag = crate::specgen::flags::parse_bytes("--memory", "lots").unwrap_err();
    for e in [
        OpsError::from(flag),
        ContainerError::BadName { name: "/x".into() }.into(),
        OpsError::PublishWithoutNetns,
        OpsError::FilterStatus { value: "x".into() },
        crate::reference::Reference::parse("UPPER")
            .unwrap_err()
            .into(),
        StoreError::InvalidName { name: "!".into() }.into(),
        OpsError::StartFailed {
            code: 127,
            message: "not found".into(),
        },
    ] {
        assert_eq!((e.class(), e.status_code()), (InvalidParameter, 400), "{e}");
    }
}

#[test]
fn registry_answers_keep_their_meaning() {
    assert_eq!(
        class_of(DistributionError::AuthRequired {
            registry: "r".into()
        }),
        (Unauthorized, 401)
    );
    assert_eq!(
        class_of(DistributionError::Denied {
            registry: "r".into(),
            what: "w".into()
        }),
        (Forbidden, 403)
    );
    let status = |code: u16| DistributionError::Status {
        registry: "r".into(),
        what: "w".into(),
        status: reqwest::StatusCode::from_u16(code).unwrap(),
        message: String::new(),
    };
    assert_eq!(class_of(status(503)), (Unavailable, 503));
    assert_eq!(class_of(status(429)), (Unavailable, 503));
    assert_eq!(class_of(status(404)), (NotFound, 404));
    assert_eq!(class_of(status(418)), (System, 500));
}

#[test]
fn networks_in_use_or_predefined_are_forbidden_as_in_dockerd() {
    assert_eq!(
        class_of(StoreError::InUse {
            name: "n".into(),
            containers: vec![]
        }),
        (Forbidden, 403)
    );
    assert_eq!(
        class_of(StoreError::Predefined {
            name: "bridge".into()
        }),
        (Forbidden, 403)
    );
}

#[test]
fn context_and_cleanup_keep_the_class_of_the_cause() {
    let cause = OpsError::from(DistributionError::AuthRequired {
        registry: "r".into(),
    });
    let pulled = OpsError::Pull {
        reference: "x".into(),
        source: Box::new(cause),
    };
    assert_eq!(pulled.class(), Unauthorized);
    assert_eq!(chain(&pulled).split(": ").next(), Some("pulling x"));
    let nested = OpsError::from(ContainerError::Volume(VolumeError::InUse {
        name: "v".into(),
        users: vec![],
    }));
    assert_eq!(nested.class(), Conflict);
    let undone = OpsError::NotRunning { id: "c".into() }
        .with_also(vec!["Error: cleaning up container c: busy".into()]);
    assert_eq!(undone.class(), Conflict);
    assert_eq!(undone.to_string(), "container c is not running");
    assert_eq!(undone.also(), ["Error: cleaning up container c: busy"]);
    let inner = ContainerError::NotFound { what: "c".into() }.with_also(vec!["also: x".into()]);
    let outer = OpsError::from(inner).with_also(vec!["also: y".into()]);
    assert_eq!(outer.also(), ["also: x", "also: y"]);
    assert_eq!(outer.class(), NotFound);
}

#[test]
fn the_rest_is_a_system_error_and_cancellation_is_its_own() {
    let io = OpsError::io("writing x", std::io::Error::other("disk full"));
    assert_eq!((io.class(), io.status_code()), (System, 500));
    assert_eq!(chain(&io), "writing x: disk full");
    assert_eq!(class_of(OpsError::Cancelled), (Cancelled, 499));
    assert_eq!(
        class_of(OpsError::StartFailed {
            code: 125,
            message: "runtime".into()
        }),
        (System, 500)
    );
}
