"""The GraphQL documents the RedBrick source sends, named as RedBrick's SDK names its operations.

Every field, argument and variable type here is one that redbrick-sdk 2.35.4's own documents select on the same
type (its ``repo/export.py``, ``repo/project.py``, ``repo/member.py`` and ``repo/shards.py``); the test suite
validates each document against that schema. Object-typed fields always carry a sub-selection, and
``currentStageSubTask`` is read through ``... on LabelingTask`` only, as the SDK reads it.
"""

from __future__ import annotations

__all__ = ["QUERIES"]

_USER = "userId email givenName"
_TASK_DATA = (f"tdId createdAt createdByEntity {{ {_USER} }} labelsData(interpolate: true) "
              "labelsDataPath(presigned: false) labelsStorage { storageId } "
              "labelsMap(presigned: false) { seriesIndex imageIndex labelName }")
_SUB_TASK = (f"... on LabelingTask {{ state assignedTo {{ {_USER} }} taskData {{ {_TASK_DATA} }} "
             f"subTasks {{ state assignedTo {{ {_USER} }} taskData {{ {_TASK_DATA} }} }} overallConsensusScore "
             f"consensusInfo {{ user {{ {_USER} }} taskData {{ {_TASK_DATA} }} "
             f"scores {{ user {{ {_USER} }} score }} }} }}")
_DATAPOINT = (f"name items(presigned: false) createdAt createdByEntity {{ {_USER} }} metaData attributes "
              "seriesInfo { name itemsIndices dataType metaData imageHeaders } "
              "heatMaps { seriesIndex name item preset dataRange opacityPoints opacityPoints3d rgbPoints } "
              "transforms { seriesIndex transform } centerline { seriesIndex name centerline } "
              "storageMethod { storageId }")
TASK = (f"taskId currentStageName priority currentStageSubTask(consensus: true) {{ {_SUB_TASK} }} "
        f"datapoint {{ {_DATAPOINT} }} latestTaskData {{ {_TASK_DATA} }}")
_PIN = "pin { pinId pointX pointY pointZ frameIndex volumeIndex }"
_COMMENT = (f"commentId createdBy {{ {_USER} }} textVal createdAt stageName issueComment issueResolved "
            f"labelEntityLabelId {_PIN}")
EVENTS = (
    "taskId currentStageName datapoint { name } genericEvents { __typename "
    "... on TaskEvent { createdAt updatedBy createEvent { currentStageName isGroundTruth priority } "
    f"inputEvent {{ currentStageName overallConsensusScore priority consensusInfo {{ user {{ {_USER} }} "
    f"taskData {{ tdId }} scores {{ user {{ {_USER} }} score }} }} }} "
    "outputEvent { currentStageName outputBool nextStageName timeSpentMs "
    f"multiLabels {{ user {{ {_USER} }} taskData {{ tdId }} }} }} taskData {{ tdId createdBy }} }} "
    f"... on Comment {{ {_COMMENT} taskData {{ tdId }} replies {{ {_COMMENT} }} }} "
    "... on TaskStateChanges { stageNameAfter: stageName createdAt updatedBy statusBefore statusAfter "
    f"assignedToBeforeEntity {{ {_USER} }} assignedToAfterEntity {{ {_USER} }} consensusAssigneesBefore "
    "consensusAssigneesAfter consensusStatusesBefore consensusStatusesAfter reviewResultBefore reviewResultAfter } }"
)
_ASSIGNMENT = f"state assignedTo {{ {_USER} }} assignedAt progressSavedAt completedAt completionTimeMs"
LISTING = (f"taskId currentStageName createdAt updatedAt priority datapoint {{ name createdByEntity {{ {_USER} }} "
           "metaData seriesInfo { name dataType metaData imageHeaders } storageMethod { storageId } } "
           f"currentStageSubTask {{ ... on LabelingTask {{ {_ASSIGNMENT} subTasks {{ {_ASSIGNMENT} }} }} }}")
_ATTRIBUTE = ("name attrType attrId options { name optionId color archived } archived parents hint defaultValue "
              "minValue maxValue stepValue")
_OLD_CATEGORY = "name classId disabled"
for _ in range(5):  # RedBrick's first taxonomies nest categories; the SDK reads six levels
    _OLD_CATEGORY = f"name classId disabled children {{ {_OLD_CATEGORY} }}"
TAXONOMY = (f"name isNew categories {{ {_OLD_CATEGORY} }} colorMap {{ name color classid trail taskcategory }} "
            f"studyClassify {{ {_ATTRIBUTE} }} seriesClassify {{ {_ATTRIBUTE} }} instanceClassify {{ {_ATTRIBUTE} }} "
            f"objectTypes {{ category classId labelType attributes {{ {_ATTRIBUTE} }} color archived parents hint }}")

_IDS = "$orgId: UUID!, $projectId: UUID!"
_PAGED = "$stageName: String, $cacheTime: DateTime, $first: Int, $after: String"
_PAGED_ARGS = "orgId: $orgId, projectId: $projectId, stageName: $stageName, cacheTime: $cacheTime, first: $first, " \
              "after: $after"
QUERIES = {
    "getProjectSDK": f"query getProjectSDK({_IDS}) {{ project(orgId: $orgId, projectId: $projectId) "
                     f"{{ status taxonomy {{ {TAXONOMY} }} stages {{ stageName brickName }} "
                     "consensusSettings { enabled } } }",
    "tasksPagedSDK": f"query tasksPagedSDK({_IDS}, {_PAGED}) {{ tasksPaged({_PAGED_ARGS}) "
                     f"{{ entries {{ {TASK} }} cursor count }} }}",
    "taskSDK": f"query taskSDK({_IDS}, $taskId: UUID!) "
               f"{{ task(orgId: $orgId, projectId: $projectId, taskId: $taskId) {{ {TASK} }} }}",
    "taskActiveTimeSDK": f"query taskActiveTimeSDK({_IDS}, $stageName: String!, $taskId: UUID, $first: Int, "
                         "$after: String) { taskActiveTime(orgId: $orgId, projectId: $projectId, "
                         "stageName: $stageName, taskId: $taskId, first: $first, after: $after) "
                         f"{{ entries {{ taskId user {{ {_USER} }} timeSpent cycle date }} cursor }} }}",
    "taskEventsSDK": f"query taskEventsSDK({_IDS}, {_PAGED}) {{ tasksPaged({_PAGED_ARGS}) "
                     f"{{ entries {{ {EVENTS} }} cursor }} }}",
    "taskEventSDK": f"query taskEventSDK({_IDS}, $taskId: UUID!) "
                    f"{{ task(orgId: $orgId, projectId: $projectId, taskId: $taskId) {{ {EVENTS} }} }}",
    "tasksListSDK": f"query tasksListSDK({_IDS}, $stageName: String, $taskSearch: String, "
                    "$manualLabelingFilters: TasksFilter, $first: Int, $after: String) { genericTasks(orgId: $orgId, "
                    "projectId: $projectId, stageName: $stageName, taskSearch: $taskSearch, "
                    "manualLabelingFilters: $manualLabelingFilters, first: $first, after: $after) "
                    f"{{ entries {{ {LISTING} }} cursor }} }}",
    "membersSDK": "query membersSDK($orgId: UUID!, $onlyActive: Boolean) "
                  f"{{ members(orgId: $orgId, onlyActive: $onlyActive) {{ user {{ {_USER} }} }} }}",
    "presignItemsSDK": "query presignItemsSDK($orgId: UUID!, $storageId: UUID!, $items: [String]!) "
                       "{ presignItems(orgId: $orgId, storageId: $storageId, items: $items) }",
}
