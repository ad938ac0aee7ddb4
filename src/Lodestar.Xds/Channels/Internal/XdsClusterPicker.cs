using Grpc.Core;
using Grpc.Net.Client.Balancer;
using Lodestar.Internal;
using Lodestar.LoadBalancing;
using Lodestar.Xds.Endpoints.Internal;
using Lodestar.Xds.Routing.Internal;

namespace Lodestar.Xds.Channels.Internal;

/// <summary>
/// Routes one call of an <c>xds:///</c> channel: the route table (read per call) chooses the cluster from the call's
/// path and metadata, weighted clusters by a random pick; Lodestar's balancer of that cluster chooses the endpoint,
/// and the endpoint's ready subchannel takes the call.
/// </summary>
/// <remarks>
/// Built whenever the ready subchannels or the clusters change. A call for a cluster whose balancer does not exist yet,
/// or whose endpoints have no ready connection yet, is queued until the next picker (grpc-dotnet re-picks queued calls
/// then; the call's deadline bounds the wait).
/// </remarks>
internal sealed class XdsClusterPicker : SubchannelPicker
{
    private readonly XdsChannelRoutes? _routes;
    private readonly IReadOnlyDictionary<string, ClusterBalancer> _clusters;
    private readonly ReadySubchannels _ready;
    private readonly Func<double> _random;
    private readonly XdsDropOverloads? _drops;

    public XdsClusterPicker(XdsChannelRoutes? routes, IReadOnlyDictionary<string, ClusterBalancer> clusters, IReadOnlyList<Subchannel> ready, Func<double> random,
        XdsDropOverloads? drops = null)
    {
        _drops = drops;
        _routes = routes;
        _clusters = clusters;
        _random = random;
        _ready = new ReadySubchannels(ready);
    }

    public override PickResult Pick(global::Grpc.Net.Client.Balancer.PickContext context)
    {
        var request = context.Request;
        if (_routes?.Table is not { } table)
        {
            return PickResult.ForQueue();
        }

        var path = request?.RequestUri?.AbsolutePath ?? "/";
        var match = table.Match(_routes.Listener, path, name => GetHeader(request, name), _random);
        if (match is null)
        {
            return PickResult.ForFailure(new Status(StatusCode.Unavailable,
                $"No route of route configuration '{table.Name}' (xDS listener '{_routes.Listener}') matches '{path}'."));
        }

        if (match.Cluster is not { } cluster)
        {
            return PickResult.ForFailure(new Status(StatusCode.Unavailable,
                $"Route '{match.Route.Name}' of route configuration '{table.Name}' (xDS listener '{_routes.Listener}') redirects or answers directly; a gRPC call needs a cluster."));
        }

        if (!_clusters.TryGetValue(cluster, out var balancer))
        {
            // The route names a cluster without endpoints now (fail), or whose endpoints have not arrived yet (wait).
            return _routes.EmptyClusters.Contains(cluster)
                ? PickResult.ForFailure(new Status(StatusCode.Unavailable, $"xDS cluster '{cluster}' (xDS listener '{_routes.Listener}') has no endpoints."))
                : PickResult.ForQueue();
        }

        if (balancer.Failure is { } failure)
        {
            return PickResult.ForFailure(failure);
        }

        if (balancer.Service is not { } service)
        {
            return PickResult.ForQueue();
        }

        // EDS drop overloads (gRPC's xds_cluster_impl, before its circuit breaker): each category in order drops the call
        // with its probability. ForDrop fails it at once, even a wait-for-ready call, and it is never sent.
        if (_drops is { } drops && drops.TryDrop(cluster, _random, out var drop))
        {
            return PickResult.ForDrop(new Status(StatusCode.Unavailable, XdsDropOverloads.Describe(cluster, drop)));
        }

        // gRFC A32: a cluster with max_requests calls in flight (over every channel) fails new calls at once.
        var maxRequests = balancer.MaxRequests;
        if (balancer.Calls.InFlight >= maxRequests)
        {
            return PickResult.ForFailure(new Status(StatusCode.Unavailable,
                $"xDS cluster '{cluster}' has {maxRequests} calls in flight, the max_requests of its circuit breaker; the call is not sent."));
        }

        // The route's hash policies give the key (header, cookie, query parameter), hashed by core as on the HttpClient
        // path; a key the caller set on the request wins.
        if (request is not null && match.Route.Action is { HashPolicies.Count: > 0 } action
            && !request.Options.TryGetValue(LoadBalancingRequestOptions.HashKey, out _)
            && HashKeys.Compute(action.HashPolicies, request) is { } key)
        {
            request.Options.Set(LoadBalancingRequestOptions.HashKey, key);
        }

        var pick = new Lodestar.LoadBalancing.PickContext(request);
        if (!service.TryPick(pick, out var attempt))
        {
            return NoEndpoint(service);
        }

        var route = XdsCallRoute.For(match, _routes.MaxStreamDuration);
        if (TryGetSubchannel(attempt, out var subchannel))
        {
            return PickResult.ForSubchannel(subchannel, new XdsCallTracker(attempt, balancer, request, route, service, _ready, pick));
        }

        // The endpoint has no ready connection yet (or the channel's addresses lag the balancer's set): try the others.
        attempt.Cancel();
        var tried = new List<EndpointState>(4) { attempt.Endpoint! };
        if (_ready.TryPickAnother(service, pick, tried, out attempt, out subchannel))
        {
            return PickResult.ForSubchannel(subchannel, new XdsCallTracker(attempt, balancer, request, route, service, _ready, pick));
        }

        return service.Routable.Count > 0 ? PickResult.ForQueue() : NoEndpoint(service);
    }

    private static string? GetHeader(HttpRequestMessage? request, string name)
        => request is not null && request.Headers.NonValidated.TryGetValues(name, out var values) ? string.Join(',', values) : null;

    private static PickResult NoEndpoint(BalancedService service) => PickResult.ForFailure(new Status(StatusCode.Unavailable,
        $"xDS cluster '{service.ServiceName}' has no endpoint to take the call: {service.Routable.Count} routable."));

    private bool TryGetSubchannel(in EndpointAttempt attempt, out Subchannel subchannel) => _ready.TryGet(attempt.Endpoint!, out subchannel);
}
