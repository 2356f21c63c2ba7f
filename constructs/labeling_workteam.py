"""A private SageMaker Ground Truth work team for labels that are judgement calls (borderline
scores, disputed decisions): a Cognito user pool as the private workforce's identity provider,
one group of reviewers, the workforce and the work team, notified through an SNS topic.

Reviewers are added to the user pool group by an administrator (no self sign-up); sign-in
needs MFA.  The labeling jobs themselves are built by workflow/monitoring/labeling.py.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cognito as cognito
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns

from constructs import Construct


class LabelingWorkteam(Construct):
    """Exposes `user_pool`, `client`, `group`, `workforce`, `workteam` and `workteam_arn`."""

    def __init__(self, scope: Construct, id: str, *, name: str, topic: sns.ITopic, description: str) -> None:
        super().__init__(scope, id)
        self.user_pool = cognito.UserPool(
            self,
            "Reviewers",
            self_sign_up_enabled=False,
            sign_in_aliases=cognito.SignInAliases(email=True),
            mfa=cognito.Mfa.REQUIRED,
            mfa_second_factor=cognito.MfaSecondFactor(otp=True, sms=False),
            password_policy=cognito.PasswordPolicy(
                min_length=14,
                require_digits=True,
                require_lowercase=True,
                require_uppercase=True,
                require_symbols=True,
                temp_password_validity=Duration.days(3),
            ),
            account_recovery=cognito.AccountRecovery.EMAIL_ONLY,
            feature_plan=cognito.FeaturePlan.PLUS,
            standard_threat_protection_mode=cognito.StandardThreatProtectionMode.FULL_FUNCTION,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.client = self.user_pool.add_client(
            "Labeling",
            generate_secret=True,
            o_auth=cognito.OAuthSettings(
                flows=cognito.OAuthFlows(authorization_code_grant=True),
                scopes=[cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
                # SageMaker's labeling portal; the workforce updates the URLs when it is created
                callback_urls=["https://localhost/oauth2/idpresponse"],
            ),
            supported_identity_providers=[cognito.UserPoolClientIdentityProvider.COGNITO],
            prevent_user_existence_errors=True,
        )
        self.user_pool.add_domain("Domain", cognito_domain=cognito.CognitoDomainOptions(domain_prefix=name))
        self.group = cognito.CfnUserPoolGroup(
            self, "Group", user_pool_id=self.user_pool.user_pool_id, group_name=f"{name}-reviewers"
        )
        self.workforce = sagemaker.CfnWorkforce(
            self,
            "Workforce",
            workforce_name=f"{name}-workforce"[:63],
            cognito_config={
                "clientId": self.client.user_pool_client_id,
                "userPool": self.user_pool.user_pool_id,
            },
        )
        self.workteam = sagemaker.CfnWorkteam(
            self,
            "Workteam",
            workteam_name=name,
            workforce_name=self.workforce.workforce_name,
            description=description,
            member_definitions=[
                {
                    "cognitoMemberDefinition": {
                        "cognitoClientId": self.client.user_pool_client_id,
                        "cognitoUserGroup": self.group.group_name,
                        "cognitoUserPool": self.user_pool.user_pool_id,
                    }
                }
            ],
            notification_configuration={"notificationTopicArn": topic.topic_arn},
        )
        self.workteam.node.add_dependency(self.workforce)
        self.workteam.node.add_dependency(self.group)
        self.workteam_arn = self.workteam.attr_workteam_arn
