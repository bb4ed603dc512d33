// Air Paradis tweet sentiment: the Function App (custom container from Docker Hub) with its managed identity,
// its storage (no shared keys), the Key Vault of its secrets, its telemetry, the alerts that e-mail the team
// and the workbook operators open in the portal.
targetScope = 'resourceGroup'

@description('Prefix of every resource name.')
@minLength(3)
@maxLength(20)
param name string = 'airparadis-sentiment'

@description('Azure region of the resources.')
param location string = resourceGroup().location

@description('Docker Hub image with its tag, for example airparadis/tweet-sentiment:1.2.0.')
param image string

@description('Whether the Docker Hub repository is private: its token is then read from the Key Vault secret dockerhub-token.')
param dockerHubPrivate bool = false

@description('Docker Hub account that pulls a private image (not a secret; ignored for a public image).')
param dockerHubUsername string = ''

@description('Who is e-mailed by the alerts.')
param alertEmail string

@description('Wrong predictions reported within the window that fire the alert.')
@minValue(1)
param wrongPredictionThreshold int = 3

@description('Bad buzz: percentage points by which the last hour\'s negative share, of tweets or of reach, must exceed the 24 hours before.')
@minValue(1)
@maxValue(100)
param badBuzzMarginPoints int = 15

@description('Bad buzz: predictions needed in the last hour (and in the baseline) before the rule judges the share.')
@minValue(1)
param badBuzzMinimumVolume int = 50

@description('Reason surge: how many times its usual hourly negative reach (the mean hour of the 24 hours before) a complaint reason must reach in the last hour.')
@minValue(2)
param reasonSurgeFactor int = 3

@description('Reason surge: negative tweets of a reason needed in the last hour before the rule judges it.')
@minValue(1)
param reasonSurgeMinimumTweets int = 10

@description('Table Storage table of the feedback.')
param feedbackTable string = 'feedback'

@description('Send the masked tweet text with telemetry events.')
param telemetryIncludesText bool = false

@description('Elastic Premium size: EP1 (1 vCPU), EP2 (2 vCPU) or EP3 (4 vCPU).')
@allowed(['EP1', 'EP2', 'EP3'])
param planSku string = 'EP1'

@description('Always-ready instances: warm, with the model loaded, before any request arrives.')
@minValue(1)
param alwaysReadyInstances int = 1

@description('Most instances the app bursts to under load.')
@minValue(1)
param maximumInstances int = 5

@description('Client id of the Microsoft Entra ID app registration staff sign in with for the page (empty: no sign-in).')
param staffSignInClientId string = ''

@description('Object id of the principal that runs the deployment: it may write the Key Vault secrets (empty: none).')
param deployerPrincipalId string = ''

@description('Kind of that principal.')
@allowed(['User', 'ServicePrincipal'])
param deployerPrincipalType string = 'User'

var suffix = uniqueString(resourceGroup().id, name)
var storageName = take('st${toLower(replace(name, '-', ''))}${suffix}', 24)
var vaultName = take('kv${toLower(replace(name, '-', ''))}${suffix}', 24)
// One worker process per vCPU, each running ONNX Runtime on one thread: the model is CPU-bound.
var workerProcesses = { EP1: 1, EP2: 2, EP3: 4 }
var staffSignIn = !empty(staffSignInClientId)

// Built-in roles, by their fixed ids.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${name}-logs'
  location: location
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${name}-insights'
  location: location
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    IngestionMode: 'LogAnalytics'
  }
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // Microsoft Entra ID only: the app uses its managed identity
    defaultToOAuthAuthentication: true
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource feedback 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = {
  parent: tableService
  name: feedbackTable
}

// Archives dropped in tweets-in, scored into tweets-out: containers, queues and the Event Grid subscription.
module archive 'modules/archive.bicep' = {
  name: 'archive'
  params: {
    storageName: storage.name
    location: location
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: vaultName
  location: location
  properties: {
    tenantId: subscription().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 30
    enablePurgeProtection: true
  }
}

// Custom containers need Premium, Dedicated or Container Apps; Elastic Premium keeps event-driven scaling.
resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${name}-plan'
  location: location
  kind: 'elastic'
  sku: {
    name: planSku
    tier: 'ElasticPremium'
  }
  properties: {
    reserved: true // Linux
    maximumElasticWorkerCount: maximumInstances
  }
}

// Secrets reach the app as Key Vault references, resolved with its managed identity: no value in settings.
var signingKeyReference = '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=prediction-signing-key)'
var previousSigningKeyReference = '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=prediction-signing-key-previous)'
var registrySettings = dockerHubPrivate ? [
  { name: 'DOCKER_REGISTRY_SERVER_URL', value: 'https://index.docker.io/v1' }
  { name: 'DOCKER_REGISTRY_SERVER_USERNAME', value: dockerHubUsername }
  { name: 'DOCKER_REGISTRY_SERVER_PASSWORD', value: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=dockerhub-token)' }
] : []

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: '${name}-${suffix}'
  location: location
  kind: 'functionapp,linux,container'
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: 'SystemAssigned'
    siteConfig: {
      linuxFxVersion: 'DOCKER|docker.io/${image}'
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      healthCheckPath: '/api/health'
      minimumElasticInstanceCount: alwaysReadyInstances
      functionAppScaleLimit: maximumInstances
      appSettings: concat([
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
        // Host storage through the managed identity (roles below), no connection string.
        { name: 'AzureWebJobsStorage__accountName', value: storage.name }
        { name: 'WEBSITES_ENABLE_APP_SERVICE_STORAGE', value: 'false' }
        { name: 'FUNCTIONS_WORKER_PROCESS_COUNT', value: string(workerProcesses[planSku]) }
        // Two threads for predictions, two for feedback writes waiting on storage (FEEDBACK_CONCURRENT_WRITES).
        { name: 'PYTHON_THREADPOOL_THREAD_COUNT', value: '4' }
        { name: 'WEBSITE_HEALTHCHECK_MAXPINGFAILURES', value: '3' }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY', value: 'true' }
        { name: 'FEEDBACK_TABLE', value: feedback.name }
        { name: 'FEEDBACK_TABLE_ENDPOINT', value: storage.properties.primaryEndpoints.table }
        { name: 'FEEDBACK_STORAGE_TIMEOUT_SECONDS', value: '2' }
        { name: 'FEEDBACK_CONCURRENT_WRITES', value: '2' }
        { name: 'PREDICTION_SIGNING_KEY', value: signingKeyReference }
        { name: 'PREDICTION_SIGNING_KEY_PREVIOUS', value: previousSigningKeyReference }
        { name: 'PREDICTION_TOKEN_MAX_AGE_DAYS', value: '30' }
        { name: 'STAFF_SIGN_IN_REQUIRED', value: string(staffSignIn) }
        { name: 'TELEMETRY_INCLUDE_TEXT', value: string(telemetryIncludesText) }
        { name: 'SENTIMENT_MODEL_PATH', value: 'models/champion.json' }
        { name: 'ONNX_INTRA_OP_THREADS', value: '1' }
        { name: 'MAX_TWEET_CHARS', value: '1000' }
        { name: 'MAX_BATCH_TWEETS', value: '64' }
        { name: 'MAX_BATCH_CHARS', value: '16000' }
        { name: 'MAX_REQUEST_BYTES', value: '65536' }
        // The archive job (modules/archive.bicep) on the same account, through the managed identity.
        { name: 'ArchiveStorage__blobServiceUri', value: storage.properties.primaryEndpoints.blob }
        { name: 'ArchiveStorage__queueServiceUri', value: storage.properties.primaryEndpoints.queue }
        { name: 'ARCHIVE_CHUNK_TWEETS', value: '5000' }
      ], registrySettings)
    }
  }
}

// The app's identity may do exactly what it uses: the host's blobs and queues, the feedback table, and read
// the vault's secrets.
resource hostBlobs 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource hostQueues 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource feedbackWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, app.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource secretsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, app.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// The deployer writes the signing keys (scripts/deploy.sh generates them; their values never pass through
// a template, a parameter or an output).
resource secretsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(deployerPrincipalId)) {
  name: guid(vault.id, deployerPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
    principalId: deployerPrincipalId
    principalType: deployerPrincipalType
  }
}

// Staff sign in with Microsoft Entra ID for the page and the staff routes it calls; the routes the social
// tools call (function keys), the health probe and the API description stay outside sign-in.
resource signIn 'Microsoft.Web/sites/config@2023-12-01' = if (staffSignIn) {
  parent: app
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: true
      unauthenticatedClientAction: 'RedirectToLoginPage'
      redirectToProvider: 'azureactivedirectory'
      excludedPaths: ['/api/predict', '/api/feedback', '/api/health', '/api/openapi.json']
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: staffSignInClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${subscription().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: ['api://${staffSignInClientId}', staffSignInClientId]
        }
      }
    }
    login: {
      tokenStore: { enabled: true }
    }
  }
}

// The team's e-mail, the log alerts and the workbook (infra/modules/monitoring.bicep).
module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  params: {
    name: name
    location: location
    insightsName: insights.name
    alertEmail: alertEmail
    wrongPredictionThreshold: wrongPredictionThreshold
    badBuzzMarginPoints: badBuzzMarginPoints
    badBuzzMinimumVolume: badBuzzMinimumVolume
    reasonSurgeFactor: reasonSurgeFactor
    reasonSurgeMinimumTweets: reasonSurgeMinimumTweets
  }
}

output functionAppName string = app.name
output functionAppUrl string = 'https://${app.properties.defaultHostName}'
output functionAppPrincipalId string = app.identity.principalId
output applicationInsightsName string = insights.name
output storageAccountName string = storage.name
output keyVaultName string = vault.name
output workbookId string = monitoring.outputs.workbookId
