//! Who may do what to an addressed object: loading the object and its
//! ancestors, then Kinto's 401 / 403 / 404 decisions (spec section 5).
//!
//! The same code runs on the read path (straight on the projections) and
//! inside the sequencer (through a [`Txn`], so that write preconditions are
//! checked at sequencing time): both implement [`Objects`].

use projections::{ObjectKey, Permissions, Projections, Resource, StoredObject};

use crate::errors::ApiError;
use crate::permissions::{is_allowed, AclChain, Need};
use crate::request::Identity;
use crate::sequencer::{Txn, TxnError};

/// Read access to objects by key.
pub trait Objects {
    type Err: From<ApiError>;
    fn object(&mut self, key: &ObjectKey) -> Result<Option<StoredObject>, Self::Err>;
}

impl Objects for &Projections {
    type Err = ApiError;
    fn object(&mut self, key: &ObjectKey) -> Result<Option<StoredObject>, ApiError> {
        self.get(key).map_err(ApiError::internal)
    }
}

impl Objects for Txn<'_> {
    type Err = TxnError;
    fn object(&mut self, key: &ObjectKey) -> Result<Option<StoredObject>, TxnError> {
        self.get(key)
    }
}

/// An object URL with `default` resolved to the caller's bucket id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub resource: Resource,
    pub bucket: Option<String>,
    pub collection: Option<String>,
    /// `None` for the plural endpoint.
    pub id: Option<String>,
}

impl Target {
    /// The storage parent of the addressed object(s).
    pub fn parent(&self) -> String {
        match (self.resource, &self.bucket, &self.collection) {
            (Resource::Bucket, _, _) => String::new(),
            (Resource::Collection | Resource::Group, Some(b), _) => format!("/buckets/{b}"),
            (Resource::Record, Some(b), Some(c)) => format!("/buckets/{b}/collections/{c}"),
            _ => String::new(),
        }
    }

    pub fn key_for(&self, id: &str) -> ObjectKey {
        ObjectKey {
            parent: self.parent(),
            resource: self.resource,
            id: id.to_owned(),
        }
    }

    /// The addressed object's key (object endpoints only).
    pub fn key(&self) -> Option<ObjectKey> {
        self.id.as_deref().map(|id| self.key_for(id))
    }

    pub fn bucket_key(&self) -> Option<ObjectKey> {
        match self.resource {
            Resource::Bucket => None,
            _ => self.bucket.as_deref().map(ObjectKey::bucket),
        }
    }

    pub fn collection_key(&self) -> Option<ObjectKey> {
        match (self.resource, &self.bucket, &self.collection) {
            (Resource::Record, Some(b), Some(c)) => Some(ObjectKey::collection(b, c)),
            _ => None,
        }
    }
}

/// The addressed object and its ancestors as they are now.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub bucket: Option<StoredObject>,
    pub collection: Option<StoredObject>,
    /// The addressed object (object endpoints), if it exists.
    pub object: Option<StoredObject>,
}

impl Loaded {
    /// ACLs of the ancestors only (for decisions on the parent).
    fn parent_chain(&self) -> AclChain<'_> {
        AclChain {
            bucket: self.bucket.as_ref().map(|o| &o.permissions),
            collection: self.collection.as_ref().map(|o| &o.permissions),
            group: None,
            record: None,
        }
    }

    /// ACLs of the ancestors and of the object itself.
    fn chain(&self, resource: Resource) -> AclChain<'_> {
        let mut c = self.parent_chain();
        let own = self.object.as_ref().map(|o| &o.permissions);
        match resource {
            Resource::Bucket => c.bucket = own,
            Resource::Collection => c.collection = own,
            Resource::Group => c.group = own,
            Resource::Record => c.record = own,
            // Accounts are not in the core chain (see plugins::accounts).
            Resource::Account => {}
        }
        c
    }
}

/// The resource kind of the target's parent, if it has one.
fn parent_resource(resource: Resource) -> Option<Resource> {
    match resource {
        Resource::Bucket | Resource::Account => None,
        Resource::Collection | Resource::Group => Some(Resource::Bucket),
        Resource::Record => Some(Resource::Collection),
    }
}

/// Permission checks for one request, bound to a caller and the root
/// `bucket:create` principals.
#[derive(Debug, Clone, Copy)]
pub struct Access<'a> {
    pub identity: &'a Identity,
    pub bucket_create_principals: &'a [String],
}

impl Access<'_> {
    fn principals(&self) -> &[String] {
        &self.identity.principals
    }

    /// May the caller do `need` on the target object (which exists)?
    pub fn allows(&self, loaded: &Loaded, target: &Target, need: Need) -> bool {
        is_allowed(
            &loaded.chain(target.resource),
            target.resource,
            need,
            self.principals(),
        )
    }

    /// May the caller read the target's parent level (all its children)?
    pub fn can_read_parent(&self, loaded: &Loaded, target: &Target) -> bool {
        match parent_resource(target.resource) {
            None => false,
            Some(p) => is_allowed(&loaded.parent_chain(), p, Need::Read, self.principals()),
        }
    }

    /// May the caller write the target's parent level (all its children)?
    pub fn can_write_parent(&self, loaded: &Loaded, target: &Target) -> bool {
        match parent_resource(target.resource) {
            None => false,
            Some(p) => is_allowed(&loaded.parent_chain(), p, Need::Write, self.principals()),
        }
    }

    /// May the caller create a `target.resource` in the parent?
    pub fn can_create(&self, loaded: &Loaded, target: &Target) -> bool {
        match parent_resource(target.resource) {
            None => self
                .principals()
                .iter()
                .any(|p| self.bucket_create_principals.iter().any(|q| q == p)),
            Some(p) => is_allowed(
                &loaded.parent_chain(),
                p,
                Need::Create(target.resource),
                self.principals(),
            ),
        }
    }

    /// Loads the target's ancestors and the object. A missing bucket denies
    /// (its ACL is gone, so nothing grants anything); a missing collection
    /// is a 404 for whoever may read the bucket.
    pub fn load<O: Objects>(&self, o: &mut O, target: &Target) -> Result<Loaded, O::Err> {
        let mut loaded = Loaded::default();
        if let Some(bk) = target.bucket_key() {
            loaded.bucket = o.object(&bk)?;
            if loaded.bucket.is_none() {
                return Err(self.identity.denied().into());
            }
        }
        if let Some(ck) = target.collection_key() {
            loaded.collection = o.object(&ck)?;
            if loaded.collection.is_none() {
                let chain = loaded.parent_chain();
                if is_allowed(&chain, Resource::Bucket, Need::Read, self.principals()) {
                    return Err(ApiError::missing_parent("collection", &ck.id).into());
                }
                return Err(self.identity.denied().into());
            }
        }
        if let Some(k) = target.key() {
            loaded.object = o.object(&k)?;
        }
        Ok(loaded)
    }

    /// The answer for a missing object: 404 for those who may read the
    /// parent, the permission error otherwise (existence stays hidden).
    pub fn missing(&self, loaded: &Loaded, target: &Target) -> ApiError {
        if self.can_read_parent(loaded, target) {
            ApiError::not_found(target.resource.name(), target.id.as_deref().unwrap_or(""))
        } else {
            self.identity.denied()
        }
    }

    /// The permission an existing object needs to be read by this request.
    pub fn read_need(resource: Resource) -> Need {
        match resource {
            Resource::Bucket | Resource::Collection => Need::ReadObject,
            Resource::Group | Resource::Record | Resource::Account => Need::Read,
        }
    }

    /// Does the caller appear directly in these permissions' `write`?
    pub fn shows_permissions(&self, acl: &Permissions) -> bool {
        crate::permissions::shows_permissions(acl, self.principals())
    }
}
