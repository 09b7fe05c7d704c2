"""The GraphQL operations the RedBrick source sends, named as RedBrick's SDK names them (REDBRICK_API.md 6.2)."""

_LABELS = "tdId createdAt createdByEntity { email } labelsData"
TASK_SHARD = f"""taskId currentStageName priority
 currentStageSubTask(consensus: true) {{ state ... on LabelingTask {{ overallConsensusScore
   assignedTo {{ email }} taskData {{ {_LABELS} }} subTasks {{ state assignedTo {{ email }} taskData {{ {_LABELS} }} }}
   consensusInfo {{ user {{ email }} taskData {{ {_LABELS} }} scores {{ user {{ email }} score }} }} }} }}
 datapoint {{ name items createdAt createdByEntity {{ email }} metaData attributes
   seriesInfo {{ name itemsIndices metaData imageHeaders }} storageMethod {{ storageId }}
   heatMaps {{ seriesIndex name item preset dataRange opacityPoints opacityPoints3d rgbPoints }}
   transforms {{ seriesIndex transform }} }}
 latestTaskData {{ {_LABELS} labelsStorage {{ storageId }} labelsMap {{ seriesIndex labelName }} }}"""
_USER = "userId email"
EVENTS = f"""taskId currentStageName datapoint {{ name }} genericEvents {{ __typename
 ... on TaskEvent {{ createdAt taskData {{ tdId createdBy }}
   createEvent {{ currentStageName isGroundTruth priority }}
   inputEvent {{ currentStageName overallConsensusScore priority
     consensusInfo {{ user {{ {_USER} }} taskData {{ tdId }} scores {{ user {{ {_USER} }} score }} }} }}
   outputEvent {{ currentStageName outputBool nextStageName timeSpentMs
     consensusInfo {{ user {{ {_USER} }} taskData {{ tdId }} }} }} }}
 ... on Comment {{ createdAt commentId textVal createdBy {{ {_USER} }} stageName issueComment issueResolved
   labelEntityLabelId taskData {{ tdId }} pin {{ pinId pointX pointY pointZ frameIndex volumeIndex }}
   replies {{ createdAt commentId textVal createdBy {{ {_USER} }} stageName issueComment issueResolved }} }}
 ... on TaskStateChanges {{ createdAt statusBefore statusAfter assignedToBefore assignedToAfter stageNameAfter
   reviewResultBefore reviewResultAfter consensusAssigneesBefore consensusAssigneesAfter
   consensusStatusesBefore consensusStatusesAfter }} }}"""
_SUB_TASK = f"state assignedTo {{ {_USER} }} assignedAt progressSavedAt completedAt completionTimeMs"
LISTING = f"""taskId currentStageName priority updatedAt
 datapoint {{ name createdAt createdByEntity {{ {_USER} }} metaData seriesInfo {{ name metaData imageHeaders }}
   storageMethod {{ storageId }} }}
 currentStageSubTask(consensus: true) {{ {_SUB_TASK} ... on LabelingTask {{ subTasks {{ {_SUB_TASK} }} }} }}"""
QUERIES = {
    "getTaxonomySDK": "query getTaxonomySDK($orgId: UUID!, $projectId: UUID!) "
                      "{ project(orgId: $orgId, projectId: $projectId) { taxonomy { name objectTypes } } }",
    "tasksPagedSDK": "query tasksPagedSDK($orgId: UUID!, $projectId: UUID!, $stageName: String, $cacheTime: DateTime, "
                     "$first: Int, $after: String) { tasksPaged(orgId: $orgId, projectId: $projectId, "
                     "stageName: $stageName, cacheTime: $cacheTime, first: $first, after: $after) "
                     f"{{ entries {{ {TASK_SHARD} }} cursor count }} }}",
    "taskSDK": "query taskSDK($orgId: UUID!, $projectId: UUID!, $taskId: UUID!) "
               f"{{ task(orgId: $orgId, projectId: $projectId, taskId: $taskId) {{ {TASK_SHARD} }} }}",
    "taskActiveTimeSDK": "query taskActiveTimeSDK($orgId: UUID!, $projectId: UUID!, $stageName: String!, "
                         "$taskId: UUID, $first: Int, $after: String) { taskActiveTime(orgId: $orgId, "
                         "projectId: $projectId, stageName: $stageName, taskId: $taskId, first: $first, after: $after) "
                         "{ entries { taskId user { userId email givenName } timeSpent cycle date } cursor } }",
    "taskEventsSDK": "query taskEventsSDK($orgId: UUID!, $projectId: UUID!, $stageName: String, "
                     "$cacheTime: DateTime, $first: Int, $after: String) { tasksPaged(orgId: $orgId, "
                     "projectId: $projectId, stageName: $stageName, cacheTime: $cacheTime, first: $first, "
                     f"after: $after) {{ entries {{ {EVENTS} }} cursor }} }}",
    "taskEventSDK": "query taskEventSDK($orgId: UUID!, $projectId: UUID!, $taskId: UUID!) "
                    f"{{ task(orgId: $orgId, projectId: $projectId, taskId: $taskId) {{ {EVENTS} }} }}",
    "tasksListSDK": "query tasksListSDK($orgId: UUID!, $projectId: UUID!, $stageName: String, $taskSearch: String, "
                    "$manualLabelingFilters: TasksFilter, $first: Int, $after: String) { genericTasks(orgId: $orgId, "
                    "projectId: $projectId, stageName: $stageName, taskSearch: $taskSearch, "
                    "manualLabelingFilters: $manualLabelingFilters, first: $first, after: $after) "
                    f"{{ entries {{ {LISTING} }} cursor }} }}",
    "membersSDK": "query membersSDK($orgId: UUID!) { members(orgId: $orgId, onlyActive: false) "
                  "{ user { userId email givenName familyName } } }",
    "presignItemsSDK": "query presignItemsSDK($orgId: UUID!, $storageId: UUID!, $items: [String]!) "
                       "{ presignItems(orgId: $orgId, storageId: $storageId, items: $items) }",
}
