use super::*;

#[test]
fn names_follow_docker_rules() {
    for ok in ["ab", "a1", "my-vol_1.2", "0x"] {
        validate_name(ok).unwrap();
    }
    assert!(matches!(
        validate_name("a"),
        Err(VolumeError::NameTooShort { .. })
    ));
    for bad in ["", "-ab", ".ab", "a/b", "a b", "ä1", "_x"] {
        assert!(
            matches!(validate_name(bad), Err(VolumeError::InvalidName { .. })),
            "{bad}"
        );
    }
}
