// Grants the Function App's identity "Monitoring Metrics Publisher" on the Sentinel data collection
// rule, which is what the Logs Ingestion API requires; scoped to that one rule only. Deployed into
// the rule's own resource group (main.bicep sets the module's scope from the rule's id).

@description('Name of the data collection rule in the resource group this module is deployed to.')
param dcrName string

@description('Principal id of the Function App identity.')
param principalId string

var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'

resource dcr 'Microsoft.Insights/dataCollectionRules@2022-06-01' existing = {
  name: dcrName
}

resource publish 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(dcr.id, principalId, monitoringMetricsPublisher)
  scope: dcr
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
  }
}
