//! Every reason the operator gives, in conditions and Events, in one place.

// Writes to children (Normal Events).
pub const CREATED: &str = "Created";
pub const UPDATED: &str = "Updated";
pub const DELETED: &str = "Deleted";
pub const ADOPTED: &str = "Adopted";
pub const RELEASED: &str = "Released";
pub const RESTORED: &str = "Restored";
pub const STOPPED: &str = "Stopped";

// The delete path (Normal Events).
pub const DATA_RETAINED: &str = "DataRetained";
pub const DATA_DELETED: &str = "DataDeleted";
pub const ORPHANED: &str = "Orphaned";

// Blocked until a person acts: Ready=False, Stalled=True, Warning Event.
pub const INVALID_SPEC: &str = "InvalidSpec";
pub const NAME_CONFLICT: &str = "NameConflict";
pub const SECRET_NOT_FOUND: &str = "SecretNotFound";
pub const SECRET_INCOMPLETE: &str = "SecretIncomplete";
pub const CREDENTIALS_LOST: &str = "CredentialsLost";
pub const PASSWORD_MISSING: &str = "PasswordMissing";
pub const DATA_LOST: &str = "DataLost";
/// The API server refuses a write (admission, quota, validation).
pub const REJECTED: &str = "Rejected";
/// API calls keep failing (reported after a few consecutive failures).
pub const API_ERROR: &str = "KubeError";
/// Another writer kept changing the stack's data between read and write (transient).
pub const RACED: &str = "Raced";

// Waiting for something that goes away by itself: Ready=False, Reconciling=True.
pub const WAITING_FOR_PREVIOUS_CLAIM: &str = "WaitingForPreviousClaim";
pub const WAITING_FOR_PREVIOUS_SECRET: &str = "WaitingForPreviousSecret";
/// Moving the database of an earlier version from a Deployment to a StatefulSet.
pub const REPLACING_DATABASE_DEPLOYMENT: &str = "ReplacingDatabaseDeployment";

// Rollouts of the API and frontend: Ready=False; all but Migrating also Stalled=True (Degraded).
/// The new API image waits for its migration Job.
pub const MIGRATING: &str = "Migrating";
/// The migration Job failed; the running version keeps serving.
pub const MIGRATION_FAILED: &str = "MigrationFailed";
/// New pods failed and the tier went back to its last good template (also a Warning Event).
pub const ROLLED_BACK: &str = "RolledBack";
/// New pods fail and nothing rolls them back.
pub const ROLLOUT_FAILED: &str = "RolloutFailed";
/// The database waits for a check Job to prove its new image starts.
pub const CHECKING_DATABASE_IMAGE: &str = "CheckingDatabaseImage";
/// The new database image cannot start: the database keeps its image.
pub const DATABASE_IMAGE_UNUSABLE: &str = "DatabaseImageUnusable";
/// The new database image is another Postgres major version than the data: refused.
pub const DATABASE_MAJOR_VERSION_CHANGE: &str = "DatabaseMajorVersionChange";
/// The rollout reasons that also make a Warning Event.
pub const ROLLOUT_WARNINGS: [&str; 5] = [
    MIGRATION_FAILED,
    ROLLED_BACK,
    ROLLOUT_FAILED,
    DATABASE_IMAGE_UNUSABLE,
    DATABASE_MAJOR_VERSION_CHANGE,
];
