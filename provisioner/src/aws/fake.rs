//! An in-memory AWS for the reconciler's unit tests: every trait of [`Cloud`] over one shared
//! state, with ids and ARNs shaped like AWS's, and a switch that makes the Nth write call fail
//! (to prove a rerun converges after a failure at any point).

use std::collections::BTreeMap;
use std::sync::Mutex;

use anyhow::bail;

use super::{
    ApiKey, AppSync, Authorizer, AuthorizerSpec, Cloud, EventApi, EventBridge, EventConfigSpec,
    GraphqlApi, GraphqlApiSpec, Iam, Iot, Lambda, Namespace, NamespaceSpec, Permission, Policy,
    PolicyVersion, ResolverSpec, Result, Role, Rule, RuleSpec,
};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

/// An IoT policy: the policy, its versions (id, document), its tags and its targets.
pub(crate) type FakePolicy = (
    Policy,
    Vec<(String, String)>,
    BTreeMap<String, String>,
    Vec<String>,
);

/// Everything the fake holds.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct World {
    pub(crate) event_apis: BTreeMap<String, EventApi>,
    pub(crate) namespaces: BTreeMap<String, Vec<Namespace>>,
    pub(crate) api_keys: BTreeMap<String, Vec<ApiKey>>,
    pub(crate) graphql_apis: BTreeMap<String, GraphqlApi>,
    pub(crate) schemas: BTreeMap<String, String>,
    pub(crate) data_sources: BTreeMap<String, Vec<String>>,
    pub(crate) resolvers: BTreeMap<String, Vec<ResolverSpec>>,
    /// name → (policy, versions, tags, targets).
    pub(crate) policies: BTreeMap<String, FakePolicy>,
    pub(crate) roles: BTreeMap<String, Role>,
    pub(crate) role_policies: BTreeMap<(String, String), String>,
    /// IoT custom authorizers: name → (authorizer, tags).
    pub(crate) authorizers: BTreeMap<String, (Authorizer, BTreeMap<String, String>)>,
    /// Functions that exist, with their permissions.
    pub(crate) functions: BTreeMap<String, Vec<Permission>>,
    /// EventBridge rules on the default bus, by name.
    pub(crate) rules: BTreeMap<String, Rule>,
    next_id: u64,
}

/// The fake AWS.
#[derive(Debug, Default)]
pub(crate) struct Fake {
    pub(crate) world: Mutex<World>,
    /// Write calls so far.
    writes: Mutex<usize>,
    /// The write call (counted from 1) that fails, if any.
    pub(crate) fail_at: Mutex<Option<usize>>,
}

impl Fake {
    /// Counts a write call; fails it when it is the one `fail_at` names.
    fn write(&self, op: &str) -> Result<()> {
        let mut n = self.writes.lock().unwrap();
        *n += 1;
        if *self.fail_at.lock().unwrap() == Some(*n) {
            bail!("{op}: InjectedFailure: the fake failed write call {n}");
        }
        Ok(())
    }

    /// How many write calls have been made.
    pub(crate) fn writes(&self) -> usize {
        *self.writes.lock().unwrap()
    }

    fn id(&self, w: &mut World) -> String {
        w.next_id += 1;
        format!("fake{:04}", w.next_id)
    }
}

impl Cloud for Fake {
    type AppSync = Fake;
    type Iot = Fake;
    type Iam = Fake;
    type Lambda = Fake;
    type Events = Fake;
    fn appsync(&self) -> &Fake {
        self
    }
    fn iot(&self) -> &Fake {
        self
    }
    fn iam(&self) -> &Fake {
        self
    }
    fn lambda(&self) -> &Fake {
        self
    }
    fn events(&self) -> &Fake {
        self
    }
}

fn not_found(op: &str, what: &str) -> anyhow::Error {
    anyhow::anyhow!("{op}: NotFoundException: {what} not found")
}

impl AppSync for Fake {
    async fn list_event_apis(&self) -> Result<Vec<EventApi>> {
        Ok(self
            .world
            .lock()
            .unwrap()
            .event_apis
            .values()
            .cloned()
            .collect())
    }
    async fn get_event_api(&self, id: &str) -> Result<EventApi> {
        let w = self.world.lock().unwrap();
        w.event_apis
            .get(id)
            .cloned()
            .ok_or_else(|| not_found("GetApi", id))
    }
    async fn tags_of(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let w = self.world.lock().unwrap();
        Ok(w.event_apis
            .values()
            .find(|a| a.arn == arn)
            .map(|a| a.tags.clone())
            .or_else(|| {
                w.graphql_apis
                    .values()
                    .find(|a| a.arn == arn)
                    .map(|a| a.tags.clone())
            })
            .unwrap_or_default())
    }
    async fn create_event_api(
        &self,
        name: &str,
        config: &EventConfigSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<EventApi> {
        self.write("CreateApi")?;
        let mut w = self.world.lock().unwrap();
        let id = self.id(&mut w);
        let api = EventApi {
            id: id.clone(),
            name: name.to_owned(),
            arn: format!("arn:aws:appsync:{REGION}:{ACCOUNT}:apis/{id}"),
            tags: tags.clone(),
            http_host: format!("{id}.appsync-api.{REGION}.amazonaws.com"),
            realtime_host: format!("{id}.appsync-realtime-api.{REGION}.amazonaws.com"),
            config: Some(config.clone()),
        };
        w.event_apis.insert(id, api.clone());
        Ok(api)
    }
    async fn update_event_api(
        &self,
        id: &str,
        name: &str,
        config: &EventConfigSpec,
    ) -> Result<EventApi> {
        self.write("UpdateApi")?;
        let mut w = self.world.lock().unwrap();
        let api = w
            .event_apis
            .get_mut(id)
            .ok_or_else(|| not_found("UpdateApi", id))?;
        api.name = name.to_owned();
        api.config = Some(config.clone());
        Ok(api.clone())
    }
    async fn delete_event_api(&self, id: &str) -> Result<()> {
        self.write("DeleteApi")?;
        let mut w = self.world.lock().unwrap();
        w.event_apis
            .remove(id)
            .ok_or_else(|| not_found("DeleteApi", id))?;
        w.namespaces.remove(id);
        w.api_keys.remove(id);
        Ok(())
    }
    async fn list_namespaces(&self, api_id: &str) -> Result<Vec<Namespace>> {
        Ok(self
            .world
            .lock()
            .unwrap()
            .namespaces
            .get(api_id)
            .cloned()
            .unwrap_or_default())
    }
    async fn create_namespace(
        &self,
        api_id: &str,
        spec: &NamespaceSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<Namespace> {
        self.write("CreateChannelNamespace")?;
        let mut w = self.world.lock().unwrap();
        let ns = Namespace {
            spec: spec.clone(),
            arn: format!(
                "arn:aws:appsync:{REGION}:{ACCOUNT}:apis/{api_id}/channelNamespace/{}",
                spec.name
            ),
            tags: tags.clone(),
        };
        w.namespaces
            .entry(api_id.to_owned())
            .or_default()
            .push(ns.clone());
        Ok(ns)
    }
    async fn update_namespace(&self, api_id: &str, spec: &NamespaceSpec) -> Result<Namespace> {
        self.write("UpdateChannelNamespace")?;
        let mut w = self.world.lock().unwrap();
        let ns = w
            .namespaces
            .get_mut(api_id)
            .and_then(|l| l.iter_mut().find(|n| n.spec.name == spec.name))
            .ok_or_else(|| not_found("UpdateChannelNamespace", &spec.name))?;
        ns.spec = spec.clone();
        Ok(ns.clone())
    }
    async fn delete_namespace(&self, api_id: &str, name: &str) -> Result<()> {
        self.write("DeleteChannelNamespace")?;
        let mut w = self.world.lock().unwrap();
        if let Some(l) = w.namespaces.get_mut(api_id) {
            l.retain(|n| n.spec.name != name);
        }
        Ok(())
    }
    async fn list_api_keys(&self, api_id: &str) -> Result<Vec<ApiKey>> {
        Ok(self
            .world
            .lock()
            .unwrap()
            .api_keys
            .get(api_id)
            .cloned()
            .unwrap_or_default())
    }
    async fn create_api_key(
        &self,
        api_id: &str,
        description: &str,
        expires: i64,
    ) -> Result<ApiKey> {
        self.write("CreateApiKey")?;
        let mut w = self.world.lock().unwrap();
        let key = ApiKey {
            id: format!("da2-{}", self.id(&mut w)),
            description: Some(description.to_owned()),
            expires: expires / 3600 * 3600,
        };
        w.api_keys
            .entry(api_id.to_owned())
            .or_default()
            .push(key.clone());
        Ok(key)
    }
    async fn delete_api_key(&self, api_id: &str, key_id: &str) -> Result<()> {
        self.write("DeleteApiKey")?;
        let mut w = self.world.lock().unwrap();
        if let Some(l) = w.api_keys.get_mut(api_id) {
            l.retain(|k| k.id != key_id);
        }
        Ok(())
    }
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.write("TagResource")?;
        let mut w = self.world.lock().unwrap();
        for a in w.event_apis.values_mut().filter(|a| a.arn == arn) {
            a.tags.extend(tags.clone());
        }
        for a in w.graphql_apis.values_mut().filter(|a| a.arn == arn) {
            a.tags.extend(tags.clone());
        }
        for n in w.namespaces.values_mut().flatten().filter(|n| n.arn == arn) {
            n.tags.extend(tags.clone());
        }
        Ok(())
    }
    async fn untag(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.write("UntagResource")?;
        let mut w = self.world.lock().unwrap();
        let drop_keys = |t: &mut BTreeMap<String, String>| t.retain(|k, _| !keys.contains(k));
        w.event_apis
            .values_mut()
            .filter(|a| a.arn == arn)
            .for_each(|a| drop_keys(&mut a.tags));
        w.graphql_apis
            .values_mut()
            .filter(|a| a.arn == arn)
            .for_each(|a| drop_keys(&mut a.tags));
        w.namespaces
            .values_mut()
            .flatten()
            .filter(|n| n.arn == arn)
            .for_each(|n| drop_keys(&mut n.tags));
        Ok(())
    }
    async fn list_graphql_apis(&self) -> Result<Vec<GraphqlApi>> {
        Ok(self
            .world
            .lock()
            .unwrap()
            .graphql_apis
            .values()
            .cloned()
            .collect())
    }
    async fn create_graphql_api(
        &self,
        name: &str,
        spec: &GraphqlApiSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<GraphqlApi> {
        self.write("CreateGraphqlApi")?;
        let mut w = self.world.lock().unwrap();
        let id = self.id(&mut w);
        let api = GraphqlApi {
            id: id.clone(),
            name: name.to_owned(),
            arn: format!("arn:aws:appsync:{REGION}:{ACCOUNT}:apis/{id}"),
            tags: tags.clone(),
            url: format!("https://{id}.appsync-api.{REGION}.amazonaws.com/graphql"),
            realtime_url: None,
            spec: spec.clone(),
        };
        w.graphql_apis.insert(id, api.clone());
        Ok(api)
    }
    async fn update_graphql_api(
        &self,
        id: &str,
        name: &str,
        spec: &GraphqlApiSpec,
    ) -> Result<GraphqlApi> {
        self.write("UpdateGraphqlApi")?;
        let mut w = self.world.lock().unwrap();
        let api = w
            .graphql_apis
            .get_mut(id)
            .ok_or_else(|| not_found("UpdateGraphqlApi", id))?;
        api.name = name.to_owned();
        api.spec = spec.clone();
        Ok(api.clone())
    }
    async fn delete_graphql_api(&self, id: &str) -> Result<()> {
        self.write("DeleteGraphqlApi")?;
        let mut w = self.world.lock().unwrap();
        w.graphql_apis
            .remove(id)
            .ok_or_else(|| not_found("DeleteGraphqlApi", id))?;
        w.schemas.remove(id);
        w.data_sources.remove(id);
        w.resolvers.remove(id);
        w.api_keys.remove(id);
        Ok(())
    }
    async fn put_schema(&self, api_id: &str, sdl: &str) -> Result<()> {
        self.write("StartSchemaCreation")?;
        self.world
            .lock()
            .unwrap()
            .schemas
            .insert(api_id.to_owned(), sdl.to_owned());
        Ok(())
    }
    async fn schema_sdl(&self, api_id: &str) -> Result<Option<String>> {
        Ok(self.world.lock().unwrap().schemas.get(api_id).cloned())
    }
    async fn has_data_source(&self, api_id: &str, name: &str) -> Result<bool> {
        let w = self.world.lock().unwrap();
        Ok(w.data_sources
            .get(api_id)
            .is_some_and(|l| l.iter().any(|d| d == name)))
    }
    async fn create_none_data_source(&self, api_id: &str, name: &str) -> Result<()> {
        self.write("CreateDataSource")?;
        let mut w = self.world.lock().unwrap();
        w.data_sources
            .entry(api_id.to_owned())
            .or_default()
            .push(name.to_owned());
        Ok(())
    }
    async fn get_resolver(
        &self,
        api_id: &str,
        type_name: &str,
        field: &str,
    ) -> Result<Option<ResolverSpec>> {
        let w = self.world.lock().unwrap();
        Ok(w.resolvers
            .get(api_id)
            .and_then(|l| {
                l.iter()
                    .find(|r| r.type_name == type_name && r.field_name == field)
            })
            .cloned())
    }
    async fn create_resolver(&self, api_id: &str, spec: &ResolverSpec) -> Result<()> {
        self.write("CreateResolver")?;
        let mut w = self.world.lock().unwrap();
        w.resolvers
            .entry(api_id.to_owned())
            .or_default()
            .push(spec.clone());
        Ok(())
    }
    async fn update_resolver(&self, api_id: &str, spec: &ResolverSpec) -> Result<()> {
        self.write("UpdateResolver")?;
        let mut w = self.world.lock().unwrap();
        let l = w.resolvers.entry(api_id.to_owned()).or_default();
        l.retain(|r| !(r.type_name == spec.type_name && r.field_name == spec.field_name));
        l.push(spec.clone());
        Ok(())
    }
}

impl Iot for Fake {
    async fn get_policy(&self, name: &str) -> Result<Option<Policy>> {
        Ok(self
            .world
            .lock()
            .unwrap()
            .policies
            .get(name)
            .map(|p| p.0.clone()))
    }
    async fn list_policy_names(&self) -> Result<Vec<String>> {
        Ok(self
            .world
            .lock()
            .unwrap()
            .policies
            .keys()
            .cloned()
            .collect())
    }
    async fn create_policy(
        &self,
        name: &str,
        document: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Policy> {
        self.write("CreatePolicy")?;
        let mut w = self.world.lock().unwrap();
        if w.policies.contains_key(name) {
            bail!("CreatePolicy: ResourceAlreadyExistsException: {name}");
        }
        let p = Policy {
            name: name.to_owned(),
            arn: format!("arn:aws:iot:{REGION}:{ACCOUNT}:policy/{name}"),
            document: document.to_owned(),
            default_version: "1".to_owned(),
        };
        w.policies.insert(
            name.to_owned(),
            (
                p.clone(),
                vec![("1".to_owned(), document.to_owned())],
                tags.clone(),
                Vec::new(),
            ),
        );
        Ok(p)
    }
    async fn list_versions(&self, name: &str) -> Result<Vec<PolicyVersion>> {
        let w = self.world.lock().unwrap();
        let (p, versions, ..) = w
            .policies
            .get(name)
            .ok_or_else(|| not_found("ListPolicyVersions", name))?;
        Ok(versions
            .iter()
            .map(|(id, _)| PolicyVersion {
                id: id.clone(),
                is_default: *id == p.default_version,
                created: None,
            })
            .collect())
    }
    async fn create_version(&self, name: &str, document: &str) -> Result<()> {
        self.write("CreatePolicyVersion")?;
        let mut w = self.world.lock().unwrap();
        let (p, versions, ..) = w
            .policies
            .get_mut(name)
            .ok_or_else(|| not_found("CreatePolicyVersion", name))?;
        if versions.len() >= groupcast::limits::IOT_POLICY_MAX_VERSIONS {
            bail!("CreatePolicyVersion: VersionsLimitExceededException: {name}");
        }
        let next = versions
            .iter()
            .filter_map(|(id, _)| id.parse::<u64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        versions.push((next.to_string(), document.to_owned()));
        p.default_version = next.to_string();
        p.document = document.to_owned();
        Ok(())
    }
    async fn delete_version(&self, name: &str, version: &str) -> Result<()> {
        self.write("DeletePolicyVersion")?;
        let mut w = self.world.lock().unwrap();
        if let Some((_, versions, ..)) = w.policies.get_mut(name) {
            versions.retain(|(id, _)| id != version);
        }
        Ok(())
    }
    async fn delete_policy(&self, name: &str) -> Result<()> {
        self.write("DeletePolicy")?;
        let mut w = self.world.lock().unwrap();
        match w.policies.get(name) {
            Some((_, _, _, targets)) if !targets.is_empty() => {
                bail!("DeletePolicy: DeleteConflictException: {name} is attached")
            }
            Some((_, versions, ..)) if versions.len() > 1 => {
                bail!("DeletePolicy: DeleteConflictException: {name} has versions")
            }
            _ => {}
        }
        w.policies.remove(name);
        Ok(())
    }
    async fn tags(&self, arn: &str) -> Result<BTreeMap<String, String>> {
        let w = self.world.lock().unwrap();
        let policy = w.policies.values().find(|p| p.0.arn == arn).map(|p| &p.2);
        let authorizer = w
            .authorizers
            .values()
            .find(|a| a.0.arn == arn)
            .map(|a| &a.1);
        Ok(policy.or(authorizer).cloned().unwrap_or_default())
    }
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.write("TagResource")?;
        let mut w = self.world.lock().unwrap();
        for p in w.policies.values_mut().filter(|p| p.0.arn == arn) {
            p.2.extend(tags.clone());
        }
        for a in w.authorizers.values_mut().filter(|a| a.0.arn == arn) {
            a.1.extend(tags.clone());
        }
        Ok(())
    }
    async fn untag(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.write("UntagResource")?;
        let mut w = self.world.lock().unwrap();
        for p in w.policies.values_mut().filter(|p| p.0.arn == arn) {
            p.2.retain(|k, _| !keys.contains(k));
        }
        for a in w.authorizers.values_mut().filter(|a| a.0.arn == arn) {
            a.1.retain(|k, _| !keys.contains(k));
        }
        Ok(())
    }
    async fn targets(&self, name: &str) -> Result<Vec<String>> {
        Ok(self
            .world
            .lock()
            .unwrap()
            .policies
            .get(name)
            .map(|p| p.3.clone())
            .unwrap_or_default())
    }
    async fn detach(&self, name: &str, target: &str) -> Result<()> {
        self.write("DetachPolicy")?;
        let mut w = self.world.lock().unwrap();
        if let Some(p) = w.policies.get_mut(name) {
            p.3.retain(|t| t != target);
        }
        Ok(())
    }
    async fn data_endpoint(&self) -> Result<String> {
        Ok(format!("fake-ats.iot.{REGION}.amazonaws.com"))
    }
    async fn get_authorizer(&self, name: &str) -> Result<Option<Authorizer>> {
        let w = self.world.lock().unwrap();
        Ok(w.authorizers.get(name).map(|a| a.0.clone()))
    }
    async fn create_authorizer(
        &self,
        name: &str,
        spec: &AuthorizerSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        self.write("CreateAuthorizer")?;
        let mut w = self.world.lock().unwrap();
        if w.authorizers.contains_key(name) {
            bail!("CreateAuthorizer: ResourceAlreadyExistsException: {name}");
        }
        let arn = format!("arn:aws:iot:{REGION}:{ACCOUNT}:authorizer/{name}");
        let a = Authorizer {
            name: name.to_owned(),
            arn: arn.clone(),
            spec: spec.clone(),
        };
        w.authorizers.insert(name.to_owned(), (a, tags.clone()));
        Ok(arn)
    }
    async fn update_authorizer(&self, name: &str, spec: &AuthorizerSpec) -> Result<()> {
        self.write("UpdateAuthorizer")?;
        let mut w = self.world.lock().unwrap();
        let Some((a, _)) = w.authorizers.get_mut(name) else {
            return Err(not_found("UpdateAuthorizer", name));
        };
        // signingDisabled is fixed at creation (UpdateAuthorizer has no such field).
        let signing_disabled = a.spec.signing_disabled;
        a.spec = spec.clone();
        a.spec.signing_disabled = signing_disabled;
        Ok(())
    }
    async fn delete_authorizer(&self, name: &str) -> Result<()> {
        self.write("DeleteAuthorizer")?;
        let mut w = self.world.lock().unwrap();
        w.authorizers
            .remove(name)
            .map(drop)
            .ok_or_else(|| not_found("DeleteAuthorizer", name))
    }
}

impl Iam for Fake {
    async fn get_role(&self, name: &str) -> Result<Option<Role>> {
        Ok(self.world.lock().unwrap().roles.get(name).cloned())
    }
    async fn create_role(
        &self,
        name: &str,
        trust_policy: &str,
        tags: &BTreeMap<String, String>,
    ) -> Result<Role> {
        self.write("CreateRole")?;
        let mut w = self.world.lock().unwrap();
        if w.roles.contains_key(name) {
            bail!("CreateRole: EntityAlreadyExists: {name}");
        }
        let role = Role {
            name: name.to_owned(),
            arn: format!("arn:aws:iam::{ACCOUNT}:role/{name}"),
            trust_policy: trust_policy.to_owned(),
            tags: tags.clone(),
        };
        w.roles.insert(name.to_owned(), role.clone());
        Ok(role)
    }
    async fn update_trust_policy(&self, name: &str, trust_policy: &str) -> Result<()> {
        self.write("UpdateAssumeRolePolicy")?;
        let mut w = self.world.lock().unwrap();
        let r = w
            .roles
            .get_mut(name)
            .ok_or_else(|| not_found("UpdateAssumeRolePolicy", name))?;
        r.trust_policy = trust_policy.to_owned();
        Ok(())
    }
    async fn delete_role(&self, name: &str) -> Result<()> {
        self.write("DeleteRole")?;
        let mut w = self.world.lock().unwrap();
        if w.role_policies.keys().any(|(r, _)| r == name) {
            bail!("DeleteRole: DeleteConflict: {name} has inline policies");
        }
        w.roles.remove(name);
        Ok(())
    }
    async fn role_policy_names(&self, role: &str) -> Result<Vec<String>> {
        let w = self.world.lock().unwrap();
        Ok(w.role_policies
            .keys()
            .filter(|(r, _)| r == role)
            .map(|(_, p)| p.clone())
            .collect())
    }
    async fn role_policy(&self, role: &str, policy: &str) -> Result<Option<String>> {
        let w = self.world.lock().unwrap();
        Ok(w.role_policies
            .get(&(role.to_owned(), policy.to_owned()))
            .cloned())
    }
    async fn put_role_policy(&self, role: &str, policy: &str, document: &str) -> Result<()> {
        self.write("PutRolePolicy")?;
        let mut w = self.world.lock().unwrap();
        if !w.roles.contains_key(role) {
            return Err(not_found("PutRolePolicy", role));
        }
        w.role_policies
            .insert((role.to_owned(), policy.to_owned()), document.to_owned());
        Ok(())
    }
    async fn delete_role_policy(&self, role: &str, policy: &str) -> Result<()> {
        self.write("DeleteRolePolicy")?;
        self.world
            .lock()
            .unwrap()
            .role_policies
            .remove(&(role.to_owned(), policy.to_owned()));
        Ok(())
    }
    async fn tag_role(&self, role: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.write("TagRole")?;
        let mut w = self.world.lock().unwrap();
        if let Some(r) = w.roles.get_mut(role) {
            r.tags.extend(tags.clone());
        }
        Ok(())
    }
    async fn untag_role(&self, role: &str, keys: &[String]) -> Result<()> {
        self.write("UntagRole")?;
        let mut w = self.world.lock().unwrap();
        if let Some(r) = w.roles.get_mut(role) {
            r.tags.retain(|k, _| !keys.contains(k));
        }
        Ok(())
    }
}

impl Lambda for Fake {
    async fn permissions(&self, function: &str) -> Result<Option<Vec<Permission>>> {
        Ok(self.world.lock().unwrap().functions.get(function).cloned())
    }
    async fn add_permission(&self, function: &str, permission: &Permission) -> Result<()> {
        self.write("AddPermission")?;
        let mut w = self.world.lock().unwrap();
        let l = w
            .functions
            .get_mut(function)
            .ok_or_else(|| not_found("AddPermission", function))?;
        if l.iter().any(|p| p.statement_id == permission.statement_id) {
            bail!(
                "AddPermission: ResourceConflictException: {} exists",
                permission.statement_id
            );
        }
        l.push(permission.clone());
        Ok(())
    }
    async fn remove_permission(&self, function: &str, statement_id: &str) -> Result<()> {
        self.write("RemovePermission")?;
        let mut w = self.world.lock().unwrap();
        if let Some(l) = w.functions.get_mut(function) {
            l.retain(|p| p.statement_id != statement_id);
        }
        Ok(())
    }
}

impl EventBridge for Fake {
    async fn get_rule(&self, name: &str) -> Result<Option<Rule>> {
        Ok(self.world.lock().unwrap().rules.get(name).cloned())
    }
    async fn put_rule(
        &self,
        name: &str,
        spec: &RuleSpec,
        tags: &BTreeMap<String, String>,
    ) -> Result<String> {
        self.write("PutRule")?;
        let arn = format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}");
        {
            let mut w = self.world.lock().unwrap();
            // PutRule: tags only when it creates the rule; targets come with PutTargets.
            let rule = w.rules.entry(name.to_owned()).or_insert_with(|| Rule {
                name: name.to_owned(),
                arn: arn.clone(),
                spec: RuleSpec {
                    targets: Vec::new(),
                    ..spec.clone()
                },
                tags: tags.clone(),
            });
            rule.spec.description = spec.description.clone();
            rule.spec.state = spec.state.clone();
            rule.spec.event_pattern = spec.event_pattern.clone();
        }
        self.write("PutTargets")?;
        let mut w = self.world.lock().unwrap();
        let rule = w.rules.get_mut(name).expect("put above");
        rule.spec.targets = spec.targets.clone();
        Ok(arn)
    }
    async fn delete_rule(&self, name: &str) -> Result<()> {
        self.write("RemoveTargets")?;
        if let Some(r) = self.world.lock().unwrap().rules.get_mut(name) {
            r.spec.targets.clear();
        }
        self.write("DeleteRule")?;
        self.world.lock().unwrap().rules.remove(name);
        Ok(())
    }
    async fn tag(&self, arn: &str, tags: &BTreeMap<String, String>) -> Result<()> {
        self.write("TagResource")?;
        let mut w = self.world.lock().unwrap();
        let r = w
            .rules
            .values_mut()
            .find(|r| r.arn == arn)
            .ok_or_else(|| not_found("TagResource", arn))?;
        r.tags.extend(tags.clone());
        Ok(())
    }
    async fn untag(&self, arn: &str, keys: &[String]) -> Result<()> {
        self.write("UntagResource")?;
        let mut w = self.world.lock().unwrap();
        let r = w
            .rules
            .values_mut()
            .find(|r| r.arn == arn)
            .ok_or_else(|| not_found("UntagResource", arn))?;
        r.tags.retain(|k, _| !keys.contains(k));
        Ok(())
    }
}
