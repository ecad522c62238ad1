# The API's image (the Dockerfile's lambda target). Lambda pulls it only when the function is
# created or updated, so the repository costs its storage and nothing at idle.
resource "aws_ecr_repository" "api" {
  #checkov:skip=CKV_AWS_136:AES256 (AWS-managed) encryption at rest; a customer managed KMS key costs per month whether or not the API is used.
  name                 = "${var.name}-api"
  image_tag_mutability = "IMMUTABLE"
  force_delete         = var.force_destroy

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "AES256"
  }
}

resource "aws_ecr_lifecycle_policy" "api" {
  repository = aws_ecr_repository.api.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the 10 newest images; the function runs one of them."
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 10 }
      action       = { type = "expire" }
    }]
  })
}

# Lambda pulls the image with the service's own identity: only this function may.
data "aws_iam_policy_document" "ecr_pull" {
  statement {
    sid     = "LambdaPullsTheApiImage"
    actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringLike"
      variable = "aws:sourceArn"
      values   = [local.function_arn]
    }
  }
}

resource "aws_ecr_repository_policy" "api" {
  repository = aws_ecr_repository.api.name
  policy     = data.aws_iam_policy_document.ecr_pull.json
}
