// Air Paradis tweet sentiment: the Function App (custom container from Docker Hub), its storage, its
// telemetry and the alert that e-mails the team when users report wrong predictions.
targetScope = 'resourceGroup'

@description('Prefix of every resource name.')
@minLength(3)
@maxLength(20)
param name string = 'airparadis-sentiment'

@description('Azure region of the resources.')
param location string = resourceGroup().location

@description('Docker Hub image with its tag, for example airparadis/tweet-sentiment:1.2.0.')
param image string

@description('Docker Hub account that can pull the image.')
@secure()
param dockerHubUsername string

@description('Docker Hub access token of that account.')
@secure()
param dockerHubToken string

@description('Who is e-mailed when users report wrong predictions.')
param alertEmail string

@description('Wrong predictions reported within the window that fire the alert.')
@minValue(1)
param wrongPredictionThreshold int = 3

@description('Table Storage table of the feedback.')
param feedbackTable string = 'feedback'

@description('Send the masked tweet text with telemetry events.')
param telemetryIncludesText bool = false

@description('Elastic Premium size: EP1, EP2 or EP3.')
@allowed(['EP1', 'EP2', 'EP3'])
param planSku string = 'EP1'

@description('Most instances the plan scales out to.')
param maximumInstances int = 5

var suffix = uniqueString(resourceGroup().id, name)
var storageName = take('st${toLower(replace(name, '-', ''))}${suffix}', 24)

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

var storageConnection = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: '${name}-${suffix}'
  location: location
  kind: 'functionapp,linux,container'
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: 'DOCKER|docker.io/${image}'
      ftpsState: 'Disabled'
      minTlsVersion: '1.2'
      healthCheckPath: '/api/health'
      appSettings: [
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
        { name: 'AzureWebJobsStorage', value: storageConnection }
        { name: 'WEBSITES_ENABLE_APP_SERVICE_STORAGE', value: 'false' }
        { name: 'DOCKER_REGISTRY_SERVER_URL', value: 'https://index.docker.io/v1' }
        { name: 'DOCKER_REGISTRY_SERVER_USERNAME', value: dockerHubUsername }
        { name: 'DOCKER_REGISTRY_SERVER_PASSWORD', value: dockerHubToken }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY', value: 'true' }
        { name: 'FEEDBACK_TABLE', value: feedback.name }
        { name: 'TELEMETRY_INCLUDE_TEXT', value: string(telemetryIncludesText) }
        { name: 'SENTIMENT_MODEL_PATH', value: 'models/champion.json' }
        { name: 'ONNX_INTRA_OP_THREADS', value: '1' }
        { name: 'MAX_TWEET_CHARS', value: '1000' }
        { name: 'MAX_BATCH_TWEETS', value: '64' }
        { name: 'MAX_REQUEST_BYTES', value: '65536' }
      ]
    }
  }
}

resource team 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${name}-team'
  location: 'global'
  properties: {
    groupShortName: 'sentiment'
    enabled: true
    emailReceivers: [
      {
        name: 'team'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Sliding window: evaluated every minute over the last five minutes.
resource wrongPredictions 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${name}-wrong-predictions'
  location: location
  kind: 'LogAlert'
  properties: {
    displayName: 'Users report wrong sentiment predictions'
    description: 'At least ${wrongPredictionThreshold} predictions reported wrong by users within 5 minutes.'
    severity: 2
    enabled: true
    scopes: [insights.id]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('alerts/wrong-predictions.kql')
          timeAggregation: 'Count'
          operator: 'GreaterThanOrEqual'
          threshold: wrongPredictionThreshold
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [team.id]
    }
  }
}

resource failures 'Microsoft.Insights/scheduledQueryRules@2023-03-15-preview' = {
  name: '${name}-function-failures'
  location: location
  kind: 'LogAlert'
  properties: {
    displayName: 'Sentiment functions failing'
    description: 'More than 5% of requests failed over 15 minutes (at least 20 requests).'
    severity: 1
    enabled: true
    scopes: [insights.id]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      allOf: [
        {
          query: loadTextContent('alerts/function-failures.kql')
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'failure_percent'
          operator: 'GreaterThan'
          threshold: 5
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: true
    actions: {
      actionGroups: [team.id]
    }
  }
}

output functionAppName string = app.name
output functionAppUrl string = 'https://${app.properties.defaultHostName}'
output applicationInsightsName string = insights.name
output storageAccountName string = storage.name
