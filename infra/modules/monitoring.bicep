// What operators see and get: the action group that e-mails the team, the log alerts on the service's
// telemetry (each query a .kql file of infra/alerts) and the workbook of infra/workbook's queries.

@description('Prefix of every resource name.')
param name string

param location string

@description('The Application Insights resource the alerts and the workbook read.')
param insightsName string

@description('Who is e-mailed by the alerts.')
param alertEmail string

@description('Wrong predictions reported within the window that fire the alert.')
@minValue(1)
param wrongPredictionThreshold int

@description('Bad buzz: percentage points by which the last hour\'s negative share, of tweets or of reach, must exceed the 24 hours before.')
@minValue(1)
@maxValue(100)
param badBuzzMarginPoints int

@description('Bad buzz: predictions needed in the last hour (and in the baseline) before the rule judges the share.')
@minValue(1)
param badBuzzMinimumVolume int

@description('Reason surge: how many times its usual hourly negative reach (the mean hour of the 24 hours before) a complaint reason must reach in the last hour.')
@minValue(2)
param reasonSurgeFactor int

@description('Reason surge: negative tweets of a reason needed in the last hour before the rule judges it.')
@minValue(1)
param reasonSurgeMinimumTweets int

resource insights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: insightsName
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
resource wrongPredictions 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
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
          query: loadTextContent('../alerts/wrong-predictions.kql')
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
    autoMitigate: true // resolves once the window holds fewer reports: the next burst e-mails again
    actions: {
      actionGroups: [team.id]
    }
  }
}

resource failures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
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
          query: loadTextContent('../alerts/function-failures.kql')
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

// The bad buzz: the last hour's negative share, of tweets and of reach, against the 24 hours before it (a 25-hour
// query, within the 2-day limit of log alerts), judged only above a minimum volume so a quiet night pages nobody;
// rise_points is the larger of the two rises. The e-mail shows the query's dimension columns: `details` gives
// both shares and their baselines, the complaint reasons behind the negative reach (each against its baseline),
// the volume, the model version and the loudest prediction ids.
// Actions are muted for an hour after a firing: during a bad buzz the team gets an update each hour, not
// each evaluation; alerts then stay open until an operator closes them (Azure does not combine muting with
// automatic resolution).
resource badBuzz 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${name}-bad-buzz'
  location: location
  kind: 'LogAlert'
  properties: {
    displayName: 'Bad buzz: the share of negative tweets or of their reach is rising'
    description: 'Negative share of the last hour, of tweets or of reach, over its 24-hour baseline by more than ${badBuzzMarginPoints} points (at least ${badBuzzMinimumVolume} predictions).'
    severity: 1
    enabled: true
    scopes: [insights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: replace(loadTextContent('../alerts/bad-buzz.kql'), 'let min_volume = 50;', 'let min_volume = ${badBuzzMinimumVolume};')
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'rise_points'
          operator: 'GreaterThan'
          threshold: badBuzzMarginPoints
          dimensions: [
            { name: 'details', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    muteActionsDuration: 'PT1H'
    actions: {
      actionGroups: [team.id]
    }
  }
}

// A storm the model cannot read: the last hour's share of tweets in another language (or with no readable
// words) against the 24 hours before it. The bad buzz counts readable tweets only, so a French bad buzz shows
// here; same volume, margin, muting and e-mail as the bad buzz, `details` names the languages.
resource unreadableStorm 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${name}-unreadable-storm'
  location: location
  kind: 'LogAlert'
  properties: {
    displayName: 'Tweets the model cannot read are rising (another language?)'
    description: 'Share of unreadable tweets (other languages, no readable words) of the last hour over its 24-hour baseline by more than ${badBuzzMarginPoints} points (at least ${badBuzzMinimumVolume} predictions).'
    severity: 1
    enabled: true
    scopes: [insights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: replace(loadTextContent('../alerts/unreadable-share.kql'), 'let min_volume = 50;', 'let min_volume = ${badBuzzMinimumVolume};')
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'rise_points'
          operator: 'GreaterThan'
          threshold: badBuzzMarginPoints
          dimensions: [
            { name: 'details', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    muteActionsDuration: 'PT1H'
    actions: {
      actionGroups: [team.id]
    }
  }
}

// A reason surges: one complaint reason's negative reach in the last hour against its usual hour (the mean hour
// of the 24 hours before), for reasons with enough negative tweets in the hour. Split by reason, so two reasons
// surging are two alerts; `details` gives the reach, the tweets, the ratio, the usual level and the loudest
// prediction ids. Muted for an hour like the bad buzz, same action group.
resource reasonSurge 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${name}-reason-surge'
  location: location
  kind: 'LogAlert'
  properties: {
    displayName: 'A complaint reason is surging'
    description: 'One reason\'s negative reach of the last hour at least ${reasonSurgeFactor} times its usual hour over the 24 hours before (at least ${reasonSurgeMinimumTweets} negative tweets of that reason).'
    severity: 2
    enabled: true
    scopes: [insights.id]
    evaluationFrequency: 'PT15M'
    windowSize: 'P2D'
    criteria: {
      allOf: [
        {
          query: replace(loadTextContent('../alerts/reason-surge.kql'), 'let min_tweets = 10;', 'let min_tweets = ${reasonSurgeMinimumTweets};')
          timeAggregation: 'Maximum'
          metricMeasureColumn: 'surge_ratio'
          operator: 'GreaterThanOrEqual'
          threshold: reasonSurgeFactor
          dimensions: [
            { name: 'reason', operator: 'Include', values: ['*'] }
            { name: 'details', operator: 'Include', values: ['*'] }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    autoMitigate: false
    muteActionsDuration: 'PT1H'
    actions: {
      actionGroups: [team.id]
    }
  }
}

// The portal view of the service: each query is a .kql file of infra/workbook, like the alerts.
var workbookQueries = [
  { title: 'Predictions per sentiment', file: loadTextContent('../workbook/predictions-per-label.kql'), chart: 'timechart' }
  {
    title: 'Negative share of tweets and of reach against the bad-buzz lines (baseline + ${badBuzzMarginPoints} points)'
    file: replace(loadTextContent('../workbook/negative-share.kql'), 'let margin_points = 15.0;', 'let margin_points = ${badBuzzMarginPoints}.0;')
    chart: 'timechart'
  }
  { title: 'Negative reach per hour by complaint reason', file: loadTextContent('../workbook/negative-reach-by-reason.kql'), chart: 'barchart' }
  { title: 'Loudest complaints (reach and reason, no text)', file: loadTextContent('../workbook/loudest-complaints.kql'), chart: 'table' }
  { title: 'Share of answers the model is unsure of', file: loadTextContent('../workbook/unsure-share.kql'), chart: 'timechart' }
  { title: 'Share of tweets per language, and of tweets the model cannot read', file: loadTextContent('../workbook/languages.kql'), chart: 'timechart' }
  { title: 'Wrong-prediction rate per model version', file: loadTextContent('../workbook/wrong-prediction-rate.kql'), chart: 'barchart' }
  { title: 'Latency (ms) and failures', file: loadTextContent('../workbook/latency-and-failures.kql'), chart: 'timechart' }
  { title: 'Feedback volume', file: loadTextContent('../workbook/feedback-volume.kql'), chart: 'barchart' }
  { title: 'Latest wrong predictions', file: loadTextContent('../workbook/latest-wrong-predictions.kql'), chart: 'table' }
]

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  name: guid(resourceGroup().id, name, 'workbook')
  location: location
  kind: 'shared'
  properties: {
    displayName: 'Air Paradis tweet sentiment'
    category: 'workbook'
    sourceId: insights.id
    serializedData: string({
      version: 'Notebook/1.0'
      items: concat([
        {
          type: 1
          name: 'about'
          content: { json: '## Air Paradis tweet sentiment\nPredictions, the bad-buzz signal and what drives it (reach, reasons), feedback and service health over the last 7 days.' }
        }
      ], map(range(0, length(workbookQueries)), index => {
        type: 3
        name: 'query-${index}'
        content: {
          version: 'KqlItem/1.0'
          title: workbookQueries[index].title
          query: workbookQueries[index].file
          queryType: 0
          resourceType: 'microsoft.insights/components'
          visualization: workbookQueries[index].chart
          timeContext: { durationMs: 604800000 }
          size: 0
        }
      }))
      fallbackResourceIds: [insights.id]
    })
  }
}

output workbookId string = workbook.id
