// The archive job (tweet_sentiment/archive.py): the inbox, outbox and work containers, the queues of its steps,
// and Event Grid putting a BlobCreated event for each file dropped in the inbox on the files queue, delivered
// with the system topic's own identity (Base64-encoded, as the Functions queue trigger expects). The app reads
// and writes all of it with its managed identity (its blob and queue roles on the account, in main.bicep).

@description('The storage account of the app (no shared keys).')
param storageName string

param location string

@description('Days after which the work blobs of a job that never finished are deleted.')
param workRetentionDays int = 7

// Names shared with the code: tweet_sentiment/archive.py (a test checks that they agree).
var inbox = 'tweets-in'
var containers = [inbox, 'tweets-out', 'tweets-work']
var filesQueue = 'archive-files'
var queues = [filesQueue, 'archive-files-poison', 'archive-chunks', 'archive-chunks-poison', 'archive-assemble']
var storageQueueDataMessageSender = 'c6a89b2d-59bc-44d0-9896-0f6e12d7b80a'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageName
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource container 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [for containerName in containers: {
  parent: blobService
  name: containerName
  properties: { publicAccess: 'None' }
}]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [for queueName in queues: {
  parent: queueService
  name: queueName
}]

// A job that never finished (its file deleted mid-way, say) leaves work blobs: deleted after a week.
resource lifecycle 'Microsoft.Storage/storageAccounts/managementPolicies@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    policy: {
      rules: [
        {
          name: 'archive-work'
          enabled: true
          type: 'Lifecycle'
          definition: {
            filters: { blobTypes: ['blockBlob'], prefixMatch: ['tweets-work/'] }
            actions: { baseBlob: { delete: { daysAfterModificationGreaterThan: workRetentionDays } } }
          }
        }
      ]
    }
  }
}

resource topic 'Microsoft.EventGrid/systemTopics@2023-12-15-preview' = {
  name: '${storageName}-blobs'
  location: location
  identity: { type: 'SystemAssigned' }
  properties: {
    source: storage.id
    topicType: 'Microsoft.Storage.StorageAccounts'
  }
}

// Event Grid may send messages to the files queue, and nothing else.
resource topicSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, topic.id, storageQueueDataMessageSender)
  scope: queue[0]
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataMessageSender)
    principalId: topic.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

resource filesDropped 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2023-12-15-preview' = {
  parent: topic
  name: 'tweets-in-to-archive-files'
  dependsOn: [topicSender]
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    deliveryWithResourceIdentity: {
      identity: { type: 'SystemAssigned' }
      destination: {
        endpointType: 'StorageQueue'
        properties: {
          resourceId: storage.id
          queueName: filesQueue
          queueMessageTimeToLiveInSeconds: 604800
        }
      }
    }
    filter: {
      includedEventTypes: ['Microsoft.Storage.BlobCreated']
      subjectBeginsWith: '/blobServices/default/containers/${inbox}/'
    }
    retryPolicy: { maxDeliveryAttempts: 30, eventTimeToLiveInMinutes: 1440 }
  }
}
