// The CloudStack-compatible endpoint: an HTTP API whose route /client/api hands every request to the api
// function, and whose /agent/v1/* routes (the same base URL) and GET /health go to the agent gateway.
import { Validations } from 'aws-cdk-lib';
import { HttpApi, HttpMethod, HttpStage, LogGroupLogDestination } from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { HEALTH_PATH } from '../../shared/agent/protocol.ts';

export const API_PATH = '/client/api';
export const AGENT_GATEWAY_PATH = '/agent/v1';

export interface ApiProps {
  readonly handler: IFunction;
  readonly agentGateway: IFunction;
}

export class Api extends Construct {
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    // The default stage is made here rather than by HttpApi, which offers no access-log settings for it.
    this.httpApi = new HttpApi(this, 'HttpApi', { createDefaultStage: false });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      autoDeploy: true,
      accessLogSettings: {
        destination: new LogGroupLogDestination(new LogGroup(this, 'AccessLogs', { retention: RetentionDays.ONE_MONTH })),
      },
    });
    const [route] = this.httpApi.addRoutes({
      path: API_PATH,
      methods: [HttpMethod.ANY],
      integration: new HttpLambdaIntegration('ClientApi', props.handler),
    });
    Validations.of(route).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        'CloudStack clients authenticate each request with an API key and HMAC signature or a session key, which the api function verifies; API Gateway has no authorizer for that scheme.',
    });
    // One integration for both of the gateway's routes.
    const agentGateway = new HttpLambdaIntegration('AgentGateway', props.agentGateway);
    const [agentRoute] = this.httpApi.addRoutes({
      path: `${AGENT_GATEWAY_PATH}/{proxy+}`,
      methods: [HttpMethod.POST],
      integration: agentGateway,
    });
    Validations.of(agentRoute).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason:
        "Agents enrol with a single-use token and sign every later request with their key; the agent-gateway function verifies the token or the signature against the agent's certificate from Mold's CA.",
    });
    const [healthRoute] = this.httpApi.addRoutes({
      path: HEALTH_PATH,
      methods: [HttpMethod.GET],
      integration: agentGateway,
    });
    Validations.of(healthRoute).acknowledge({
      id: 'AwsSolutions-APIG4',
      reason: 'The health check is for monitors and load balancers, which carry no credentials; it answers whether each check passed and how long it took, nothing more.',
    });
  }

  get url(): string {
    return `${this.stage.url.replace(/\/$/, '')}${API_PATH}`;
  }

  /** What `mold-agent enrol --url` takes: the base URL of both routes. */
  get baseUrl(): string {
    return this.stage.url.replace(/\/$/, '');
  }
}
