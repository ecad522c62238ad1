variable "name_prefix" {
  description = "Prefix of every resource name (lower case, digits and hyphens); buckets are <name_prefix>-<environment>-<purpose>-<account id>-<region>."
  type        = string
  default     = "analytics"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,19}$", var.name_prefix))
    error_message = "name_prefix must be 2-20 characters of lower-case letters, digits and hyphens, starting with a letter (bucket names are limited to 63 characters)."
  }
}

variable "environment" {
  description = "Deployment environment, e.g. dev, staging or prod; part of every name."
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9]{1,9}$", var.environment))
    error_message = "environment must be 2-10 lower-case letters or digits, starting with a letter."
  }
}

variable "region" {
  description = "AWS region of every resource."
  type        = string
  default     = "us-east-1"
}

variable "tags" {
  description = "Extra tags added to every resource."
  type        = map(string)
  default     = {}
}

variable "archive_retention_days" {
  description = "Days a processed landing file is kept under archive/ in the lake bucket before it expires."
  type        = number
  default     = 90

  validation {
    condition     = var.archive_retention_days >= 1
    error_message = "archive_retention_days must be at least 1."
  }
}

variable "athena_results_retention_days" {
  description = "Days Athena query results are kept in the results bucket before they expire."
  type        = number
  default     = 7

  validation {
    condition     = var.athena_results_retention_days >= 1
    error_message = "athena_results_retention_days must be at least 1."
  }
}

variable "noncurrent_version_retention_days" {
  description = "Days an overwritten or deleted object version is kept (buckets are versioned) before it expires."
  type        = number
  default     = 30
}

variable "access_log_retention_days" {
  description = "Days S3 server access logs are kept in the log bucket."
  type        = number
  default     = 90
}

variable "abort_incomplete_multipart_days" {
  description = "Days after which an incomplete multipart upload is aborted (its parts cost storage until then)."
  type        = number
  default     = 2
}

variable "bytes_scanned_cutoff_per_query" {
  description = "Athena cancels a query of this workgroup once it has scanned this many bytes (at least 10 MB; default 100 GB, about $0.50 at $5 per TB)."
  type        = number
  default     = 107374182400

  validation {
    condition     = var.bytes_scanned_cutoff_per_query >= 10485760
    error_message = "bytes_scanned_cutoff_per_query must be at least 10485760 (10 MB), Athena's minimum."
  }
}

variable "partition_projection_tables" {
  description = "Tables whose days Athena projects from s3://<lake>/parquet/<table>/dt=<day>/ instead of reading Glue partitions. Off (empty) by default: the pipeline writes each day under a versioned prefix and repoints the Glue partition, which projection would ignore (see README.md)."
  type        = set(string)
  default     = []
}

variable "partition_projection_start" {
  description = "First day (YYYY-MM-DD) a projected table can hold (projection.dt.range start); the pipeline's ANALYTICS_PARTITIONS_START."
  type        = string
  default     = "2020-01-01"

  validation {
    condition     = can(regex("^[0-9]{4}-[0-9]{2}-[0-9]{2}$", var.partition_projection_start))
    error_message = "partition_projection_start must be a date, YYYY-MM-DD."
  }
}

# The landing queue sensor keeps a received notification in flight until the run it requested
# exists: every tick resets the notification's visibility to this timeout, so it must outlast
# one tick plus the wait until the next (the sensor's 5 s interval, the daemon's delays, a
# restart of the code location). A notification that comes back anyway is recognised by its
# MessageId and not run twice, but the receive counts towards queue_max_receive_count.
variable "queue_visibility_timeout_seconds" {
  description = "Seconds a received arrival notification stays in flight; the landing queue sensor renews it every tick until the notification's run exists, so it must outlast a tick plus the interval to the next."
  type        = number
  default     = 300

  validation {
    condition     = var.queue_visibility_timeout_seconds >= 60 && var.queue_visibility_timeout_seconds <= 43200
    error_message = "queue_visibility_timeout_seconds must be 60 to 43200 (SQS's maximum): shorter, a slow tick lets waiting notifications come back."
  }
}

# A handled notification is received once. It is received again only when a tick failed after
# receiving it, the sensor stopped ticking for longer than the visibility timeout, or its run
# never appeared (the sensor lets it go after 15 minutes): each costs one receive. A
# notification that is no S3 event is never deleted and moves to the dead-letter queue after
# this many receives, one visibility timeout apart.
variable "queue_max_receive_count" {
  description = "Receives after which an arrival notification moves to the dead-letter queue; at least 2, so that one tick that failed after receiving does not dead-letter a good notification."
  type        = number
  default     = 5

  validation {
    condition     = var.queue_max_receive_count >= 2 && var.queue_max_receive_count <= 1000
    error_message = "queue_max_receive_count must be 2 to 1000 (SQS's maximum)."
  }
}

variable "pipeline_trusted_principal_arns" {
  description = "IAM principals (role or user ARNs) that may assume the pipeline role; empty means any principal of this account whose own policy allows it."
  type        = list(string)
  default     = []
}

variable "pipeline_trusted_services" {
  description = "AWS services that may assume the pipeline role where the pipeline runs (e.g. ecs-tasks.amazonaws.com, ec2.amazonaws.com)."
  type        = list(string)
  default     = ["ecs-tasks.amazonaws.com"]
}

variable "analyst_trusted_principal_arns" {
  description = "IAM principals (role or user ARNs) that may assume the analyst role; empty means any principal of this account whose own policy allows it."
  type        = list(string)
  default     = []
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete buckets that still hold objects (for throwaway environments only)."
  type        = bool
  default     = false
}

variable "web_log_group_name" {
  description = "CloudWatch Logs group of the web app's request logs, exported into landing/web_requests/ (ANALYTICS_WEB_LOG_GROUP)."
  type        = string
  default     = "/analytics/web-requests"

  validation {
    condition     = can(regex("^[.\\-_/#A-Za-z0-9]{1,512}$", var.web_log_group_name))
    error_message = "web_log_group_name must be a CloudWatch Logs group name: 1-512 of letters, digits and . - _ / #."
  }
}

# Dagster on ECS (dagster.tf)

variable "dagster_vpc_id" {
  description = "VPC to run Dagster in (ECS Fargate services, RDS PostgreSQL, load balancer); null deploys the lake only."
  type        = string
  default     = null
}

variable "dagster_subnet_ids" {
  description = "Private subnets (two or more Availability Zones) of the Dagster tasks and database, with a route to the AWS APIs (NAT gateway or VPC endpoints)."
  type        = list(string)
  default     = []

  validation {
    condition     = var.dagster_vpc_id == null || length(var.dagster_subnet_ids) >= 2
    error_message = "dagster_subnet_ids needs subnets in at least two Availability Zones (RDS and the load balancer require it)."
  }
}

variable "dagster_load_balancer_subnet_ids" {
  description = "Subnets of the UI's load balancer; null uses dagster_subnet_ids (internal). Public subnets only together with dagster_authentication."
  type        = list(string)
  default     = null
}

variable "dagster_allowed_cidr_blocks" {
  description = "Networks that may open the Dagster UI through the load balancer."
  type        = list(string)
  default     = ["10.0.0.0/8"]
}

variable "dagster_authentication" {
  description = "null (default): the UI's load balancer is internal, plain HTTP. Set certificate_arn and exactly one of oidc or cognito for an internet-facing HTTPS ALB that signs users in first."
  type = object({
    certificate_arn = string
    oidc = optional(object({
      issuer                 = string
      authorization_endpoint = string
      token_endpoint         = string
      user_info_endpoint     = string
      client_id              = string
      client_secret          = string
    }))
    cognito = optional(object({
      user_pool_arn       = string
      user_pool_client_id = string
      user_pool_domain    = string
    }))
  })
  default = null
}

variable "dagster_image_tag" {
  description = "Tag of the image in the Dagster ECR repository the services and runs use (tags are immutable: push a new tag per release)."
  type        = string
  default     = "latest"
}

variable "alert_email" {
  description = "E-mail address subscribed to the alerts topic (run failures, failed checks, freshness misses); null for none."
  type        = string
  default     = null
}

variable "dagster_log_retention_days" {
  description = "Days the Dagster containers' CloudWatch logs are kept."
  type        = number
  default     = 365
}

variable "dagster_db_instance_class" {
  description = "RDS instance class of Dagster's PostgreSQL."
  type        = string
  default     = "db.t4g.micro"
}

variable "dagster_db_backup_retention_days" {
  description = "Days of automated backups of Dagster's PostgreSQL."
  type        = number
  default     = 7

  validation {
    condition     = var.dagster_db_backup_retention_days >= 1 && var.dagster_db_backup_retention_days <= 35
    error_message = "dagster_db_backup_retention_days must be 1 to 35 (0 would turn backups off)."
  }
}

variable "dagster_deletion_protection" {
  description = "Refuse to delete Dagster's database and load balancer; set false before `terraform destroy`."
  type        = bool
  default     = true
}

variable "movie_rental_db_secret_arn" {
  description = "ARN of the Secrets Manager secret (RDS format) holding the movie_rental source database's connection; the pipeline role may read exactly this secret. Empty: no grant."
  type        = string
  default     = ""

  validation {
    condition     = var.movie_rental_db_secret_arn == "" || can(regex("^arn:aws[a-z-]*:secretsmanager:", var.movie_rental_db_secret_arn))
    error_message = "movie_rental_db_secret_arn must be empty or a Secrets Manager secret ARN."
  }
}

# The analytics API on AWS (api.tf)

variable "api_enabled" {
  description = "Deploy the analytics API: a Lambda from the API image behind an API Gateway HTTP API, its ECR repository and keys secret."
  type        = bool
  default     = false
}

variable "api_image_tag" {
  description = "Tag of the API image (Dockerfile target lambda) in the API's ECR repository; required with api_enabled (tags are immutable: a new tag per release)."
  type        = string
  default     = null

  validation {
    condition     = !var.api_enabled || var.api_image_tag != null
    error_message = "api_image_tag must be set when api_enabled is true (push the lambda image to the API repository first)."
  }
}

variable "api_memory_mb" {
  description = "Memory of the API function in MB (CPU grows with it)."
  type        = number
  default     = 1024
}

variable "api_reserved_concurrency" {
  description = "Concurrent executions reserved for the API function; also its ceiling, so a burst cannot exhaust the account's Lambda concurrency."
  type        = number
  default     = 10

  validation {
    condition     = var.api_reserved_concurrency >= 1
    error_message = "api_reserved_concurrency must be at least 1 (0 would stop the function)."
  }
}

variable "api_throttling_rate_limit" {
  description = "Steady requests per second the API stage accepts before answering 429."
  type        = number
  default     = 20
}

variable "api_throttling_burst_limit" {
  description = "Requests the API stage accepts in a burst before answering 429."
  type        = number
  default     = 40
}

variable "api_log_retention_days" {
  description = "Days the API function's log and the API's access log are kept."
  type        = number
  default     = 365
}
