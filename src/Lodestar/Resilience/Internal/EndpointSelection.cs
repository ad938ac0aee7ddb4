using Lodestar.Diagnostics.Internal;
using Lodestar.Health.Internal;
using Lodestar.Http;
using Lodestar.LoadBalancing;

namespace Lodestar.Resilience.Internal;

/// <summary>Picks the endpoint for the next attempt of a request: not tried yet for it, and admitted by its circuit breaker.</summary>
internal static class EndpointSelection
{
    /// <summary>
    /// Picks an endpoint not in <paramref name="tried"/> whose circuit breaker admits the attempt; endpoints whose
    /// breaker refuses are added to <paramref name="tried"/>. Returns <see langword="null"/> when none is left.
    /// </summary>
    public static EndpointState? PickAdmitted(in RequestContext context, ref List<EndpointState>? tried, LodestarMetrics metrics, out long ticket)
    {
        var balancer = context.Route.Balancer;
        var state = balancer.Pick(new PickContext(context.Request) { Attempted = tried });
        metrics.RecordPick(balancer.ServiceName, balancer.PolicyName);
        while (state is not null)
        {
            ticket = HealthStage.TryAdmit(state);
            if (ticket >= 0)
            {
                return state;
            }

            (tried ??= new List<EndpointState>(context.MaxAttempts)).Add(state);
            state = balancer.Pick(new PickContext(context.Request) { Attempted = tried });
        }

        ticket = -1;
        return null;
    }

    /// <summary>Builds the error for a request that found no endpoint to send its next attempt to.</summary>
    /// <param name="context">The request.</param>
    /// <param name="attempts">The attempts sent so far.</param>
    /// <param name="failures">The attempts that failed so far, or <see langword="null"/>.</param>
    /// <param name="tried">Every endpoint tried or refused by its breaker.</param>
    /// <param name="metrics">The instruments.</param>
    public static NoEndpointsException NoEndpoints(in RequestContext context, int attempts, FailedAttempts? failures, List<EndpointState>? tried, LodestarMetrics metrics)
    {
        var service = context.ServiceName;
        metrics.NoEndpoints.Add(1, new KeyValuePair<string, object?>("lodestar.service", service));
        var refused = Math.Max(0, (tried?.Count ?? 0) - attempts);
        string message;
        if (tried is null || tried.Count == 0)
        {
            message = $"Service '{service}' has no endpoints.";
        }
        else if (attempts == 0)
        {
            metrics.RecordRejected(service, "circuit_open");
            message = $"Service '{service}' has no endpoint to send the request to: the circuit breakers of all {refused} candidate endpoint(s) are open.";
        }
        else
        {
            message = $"Service '{service}' has no endpoint left to try after {attempts} failed attempt(s)"
                      + (refused > 0 ? $" and {refused} endpoint(s) with open circuit breakers" : string.Empty)
                      + (failures is null ? "." : ": " + failures.Describe() + ".");
        }

        return new NoEndpointsException(message, failures?.LastError) { ServiceName = service };
    }
}
