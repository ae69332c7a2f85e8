// Defender for Cloud continuous export of every finding kind Corral normalizes to one Event Hub.
// An automation exports the subscription it is deployed in (or resource groups of it), never
// another one: other subscriptions get their own, through Defender for Cloud's built-in policy
// (docs/deploy.md).

@description('Name of the automation.')
param name string

@description('Region of the automation resource.')
param location string

@description('Resource id of the Event Hub that receives the export.')
param eventHubId string

@description('Send-only connection string of that hub (from its SAS policy, resolved at deploy time).')
@secure()
param sendConnectionString string

// Streaming (on change) and weekly snapshots of each kind; the snapshots let the store notice
// findings that were resolved while an export was paused.
var eventSources = [
  'Alerts'
  'Assessments'
  'AssessmentsSnapshot'
  'SubAssessments'
  'SubAssessmentsSnapshot'
  'RegulatoryComplianceAssessment'
  'RegulatoryComplianceAssessmentSnapshot'
  'AttackPaths'
  'AttackPathsSnapshot'
]

resource automation 'Microsoft.Security/automations@2023-12-01-preview' = {
  name: name
  location: location
  properties: {
    description: 'Corral: Defender for Cloud findings to Event Hubs'
    isEnabled: true
    scopes: [
      {
        description: 'This subscription'
        scopePath: subscription().id
      }
    ]
    sources: [for source in eventSources: {
      eventSource: source
      ruleSets: []
    }]
    actions: [
      {
        actionType: 'EventHub'
        eventHubResourceId: eventHubId
        connectionString: sendConnectionString
      }
    ]
  }
}

output automationId string = automation.id
