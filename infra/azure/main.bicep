// Corral on Azure: Defender for Cloud continuous export -> Event Hubs -> Function App (Flex
// Consumption) -> the central store (PostgreSQL, connection string in Key Vault) -> sinks.
//
// Deploy at resource-group scope:  az deployment group create -g <rg> -f infra/azure/main.bicep -p ...
// Secrets are never parameters here: the deployer writes them into the Key Vault after the first
// deployment (see docs/deploy.md); app settings only hold Key Vault references to them, resolved
// with the app's managed identity. Nothing here sets an expiry date on a secret.
//
// This deployment exports the Defender findings of its own subscription. Other subscriptions
// export to the same Event Hub through Defender for Cloud's built-in policy "Deploy export to
// Event Hub for Microsoft Defender for Cloud data", assigned at a management group (docs/deploy.md):
// an automation exports only the subscription it lives in.

targetScope = 'resourceGroup'

@description('Short name used in every resource name (3-11 lowercase letters or digits).')
@minLength(3)
@maxLength(11)
param prefix string = 'corral'

@description('Azure region for all resources.')
param location string = resourceGroup().location

@description('Name of the Key Vault secret that holds the store URL (postgresql://...). Its value is set by the deployer, never here.')
param storeSecretName string = 'corral-store-url'

@description('Key Vault secrets the sinks read, as { ENV_VAR_NAME: secretName }; each becomes an app setting with a Key Vault reference.')
param sinkSecrets object = {}

@description('Object id of the principal that deploys code and writes secrets (granted Key Vault Secrets Officer). Empty to skip.')
param operatorObjectId string = ''

@description('Resource id of the Sentinel data collection rule, when the sentinel sink is used (empty otherwise).')
param sentinelDcrId string = ''

@description('corral.toml path inside the package (make package CORRAL_CONFIG_FILE=... puts it there); empty for built-in defaults.')
param configPath string = ''

@description('Event Hubs partitions for the Defender export hub.')
@minValue(1)
@maxValue(32)
param partitionCount int = 4

@description('Most instances the Flex Consumption plan scales the app out to (each holds its own store connections).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each instance, in MB (Flex Consumption offers 512, 2048 and 4096).')
@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

var suffix = uniqueString(resourceGroup().id)
var names = {
  storage: take('${prefix}${suffix}', 24)
  eventHubs: '${prefix}-ehns-${suffix}'
  keyVault: take('${prefix}-kv-${suffix}', 24)
  insights: '${prefix}-ai-${suffix}'
  workspace: '${prefix}-law-${suffix}'
  plan: '${prefix}-plan-${suffix}'
  functionApp: '${prefix}-func-${suffix}'
}
var defenderHub = 'defender-findings'
// Nothing on Azure publishes normalized findings to an Event Hub (relay sinks write to Pub/Sub or
// SQS), so there is no relay hub; the app's relayed_findings function is disabled below and its
// hub name only satisfies the binding expression.
var relayHub = 'corral-relay'
var consumerGroup = 'corral'
// Flex Consumption deploys the app package from this blob container, with the app's identity.
var deploymentContainer = 'app-package'
// Built-in role definition ids.
var roles = {
  eventHubsDataReceiver: 'a638d3c7-ab3a-418d-83e6-5f17a39d4fde'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

// --- storage: the Functions runtime, the app package, and the corral-retry container that keeps
// --- events the store could not take (see functions/azure/function_app.py) --------------------
resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Without a virtual network (optional on Flex Consumption, left to the deployer) the runtime reaches its storage over the public endpoint, with TLS 1.2 and its identity only.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35; blob public access itself is off (allowBlobPublicAccess false).
  // checkov:skip=CKV_AZURE_43: The name is take(prefix + uniqueString()), lowercase alphanumerics of at most 24 characters; checkov cannot evaluate the expression.
  name: names.storage
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_GRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    // Flex Consumption has no content share: the runtime, the package deployment and the
    // triggers all use the app's identity, so no account key is ever handed out.
    allowSharedKeyAccess: false
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: { blob: { enabled: true }, file: { enabled: true }, queue: { enabled: true, keyType: 'Account' }, table: { enabled: true, keyType: 'Account' } }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: { enabled: true, days: 7 }
    containerDeleteRetentionPolicy: { enabled: true, days: 7 }
  }
}

resource retryContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'corral-retry'
  properties: { publicAccess: 'None' }
}

resource packageContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainer
  properties: { publicAccess: 'None' }
}

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

// Kept events are re-ingested within minutes; the lifecycle rule only clears what was handled long ago.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'expire-corral-retry'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['corral-retry/'] }
            actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: 30 } } }
          }
        }
      ]
    }
  }
}

// Flex Consumption runs only the Event Grid kind of blob trigger: the storage account's events go
// through this system topic. Its subscription to the kept_events function needs the app's
// blobs_extension key, which exists once the code is published: docs/deploy.md has the command.
resource storageEvents 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${names.storage}-events'
  location: location
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// --- Event Hubs: the Defender export hub ----------------------------------------------------
resource eventHubs 'Microsoft.EventHub/namespaces@2024-01-01' = {
  name: names.eventHubs
  location: location
  sku: { name: 'Standard', tier: 'Standard', capacity: 1 }
  properties: {
    minimumTlsVersion: '1.2'
    // Defender's continuous export authenticates with a SAS policy (below); the function uses its identity.
    disableLocalAuth: false
    publicNetworkAccess: 'Enabled'
  }
}

resource defenderHubRes 'Microsoft.EventHub/namespaces/eventhubs@2024-01-01' = {
  parent: eventHubs
  name: defenderHub
  properties: {
    partitionCount: partitionCount
    messageRetentionInDays: 7
  }
}

resource defenderConsumerGroup 'Microsoft.EventHub/namespaces/eventhubs/consumergroups@2024-01-01' = {
  parent: defenderHubRes
  name: consumerGroup
}

// Send-only policy on the one hub, used by Defender for Cloud's export and nothing else.
resource defenderSend 'Microsoft.EventHub/namespaces/eventhubs/authorizationRules@2024-01-01' = {
  parent: defenderHubRes
  name: 'defender-export-send'
  properties: { rights: ['Send'] }
}

module continuousExport 'modules/continuous-export.bicep' = {
  name: 'corral-continuous-export'
  params: {
    name: '${prefix}-defender-export'
    location: location
    eventHubId: defenderHubRes.id
    sendConnectionString: defenderSend.listKeys().primaryConnectionString
  }
}

// --- Key Vault (RBAC) holding the store URL and the sink secrets -------------------------------
resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Same reason as CKV_AZURE_189: the vault must stay reachable for Key Vault references from an app without a virtual network.
  // checkov:skip=CKV_AZURE_189: Without a virtual network (optional on Flex Consumption, left to the deployer) App Service resolves Key Vault references over the public endpoint; access is RBAC-only, per secret role.
  name: names.keyVault
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }
}

// --- monitoring -----------------------------------------------------------------------------
resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: names.workspace
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 90
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: names.insights
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true
  }
}

// --- the Function App (Flex Consumption, Python 3.11, system-assigned identity) ---------------
resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_212: A Flex Consumption plan scales from zero; there are no instances to pin.
  // checkov:skip=CKV_AZURE_225: Zone redundancy is a deployer's choice on Flex Consumption (it sets always-ready instances, which cost money at rest).
  name: names.plan
  location: location
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

var kvRef = 'VaultName=${keyVault.name};SecretName='
// Flex Consumption takes the runtime and its version from functionAppConfig, and has no content
// share: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION and WEBSITE_CONTENT* are refused.
var baseSettings = [
  // The runtime's own storage, reached with the app's identity.
  { name: 'AzureWebJobsStorage__accountName', value: storage.name }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'Authorization=AAD' }
  // Identity-based Event Hubs connections: the trigger's `connection` names this prefix.
  { name: 'DEFENDER_EVENTHUB__fullyQualifiedNamespace', value: '${eventHubs.name}.servicebus.windows.net' }
  { name: 'CORRAL_EVENTHUB_NAME', value: defenderHub }
  { name: 'CORRAL_RELAY_EVENTHUB_NAME', value: relayHub }
  { name: 'CORRAL_EVENTHUB_CONSUMER_GROUP', value: consumerGroup }
  { name: 'CORRAL_STORE', value: '@Microsoft.KeyVault(${kvRef}${storeSecretName})' }
  { name: 'CORRAL_CONFIG', value: configPath }
  { name: 'AzureWebJobs.relayed_findings.Disabled', value: 'true' }
]
var secretSettings = [for item in items(sinkSecrets): {
  name: item.key
  value: '@Microsoft.KeyVault(${kvRef}${item.value})'
}]

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_212: A Flex Consumption plan scales from zero; there are no instances to pin.
  // checkov:skip=CKV_AZURE_17: No HTTP-triggered function is exposed (Event Hubs, timer and blob triggers only), so there is no client to present a certificate.
  // checkov:skip=CKV_AZURE_213: No HTTP endpoint to probe; the Event Hubs trigger's health is watched in Application Insights.
  // checkov:skip=CKV_AZURE_222: Deployment (zip deploy) uses the public SCM endpoint; the app serves no HTTP function.
  name: names.functionApp
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false // no HTTP-triggered function is exposed: triggers are Event Hubs, timers and blobs
    keyVaultReferenceIdentity: 'SystemAssigned'
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: { type: 'SystemAssignedIdentity' }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: { name: 'python', version: '3.11' }
    }
    siteConfig: {
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: concat(baseSettings, secretSettings)
    }
  }
}

// Deployment and the SCM site use Entra ID only: no publishing user name and password exist.
resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: { allow: false }
}

resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: { allow: false }
}

// --- least-privilege role assignments for the app's identity ------------------------------------
resource receiveDefender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(defenderHubRes.id, functionApp.id, roles.eventHubsDataReceiver)
  scope: defenderHubRes
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.eventHubsDataReceiver)
  }
}

// Application Insights accepts only Entra-authenticated telemetry (DisableLocalAuth), which needs
// this role for the identity named in APPLICATIONINSIGHTS_AUTHENTICATION_STRING.
resource publishTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, functionApp.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

resource readSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, functionApp.id, roles.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
  }
}

// The runtime keeps Event Hubs checkpoints and leases in blobs, timer locks in blobs, and the blob
// trigger's receipts in queues: these three are what the Functions host documents for identity use.
// Blob Data Owner also lets the platform read the app package from its container.
resource storageRoles 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in [roles.storageBlobDataOwner, roles.storageQueueDataContributor, roles.storageTableDataContributor]: {
  name: guid(storage.id, functionApp.id, role)
  scope: storage
  properties: {
    principalId: functionApp.identity.principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
  }
}]

resource operatorSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(operatorObjectId)) {
  name: guid(keyVault.id, operatorObjectId, roles.keyVaultSecretsOfficer)
  scope: keyVault
  properties: {
    principalId: operatorObjectId
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}

// The DCR usually lives beside the Sentinel workspace, not in Corral's resource group: the role
// assignment is deployed where its id says (/subscriptions/<sub>/resourceGroups/<rg>/providers/
// Microsoft.Insights/dataCollectionRules/<name>). The deployer needs, there, the right to deploy
// (Microsoft.Resources/deployments/write on that resource group) and to assign roles on the DCR
// (Microsoft.Authorization/roleAssignments/write: Owner, User Access Administrator or Role Based
// Access Control Administrator). The guards keep an empty id (no Sentinel sink) from being indexed.
var sentinelDcrParts = split(sentinelDcrId, '/')

module sentinelPublisher 'modules/dcr-publisher.bicep' = if (!empty(sentinelDcrId)) {
  name: 'corral-sentinel-publisher'
  scope: resourceGroup(empty(sentinelDcrId) ? subscription().subscriptionId : sentinelDcrParts[2], empty(sentinelDcrId) ? resourceGroup().name : sentinelDcrParts[4])
  params: {
    dcrName: last(sentinelDcrParts)
    principalId: functionApp.identity.principalId
  }
}

output functionAppName string = functionApp.name
output keyVaultName string = keyVault.name
output eventHubsNamespace string = eventHubs.name
output defenderHubName string = defenderHub
output storageEventsTopic string = storageEvents.name
output deploymentContainerUrl string = '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
