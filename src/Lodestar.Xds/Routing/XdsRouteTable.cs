namespace Lodestar.Xds.Routing;

/// <summary>
/// A validated route configuration (RDS resource, or the one inlined in a listener): virtual hosts chosen by
/// authority, then the first route whose path, headers and runtime fraction match.
/// </summary>
/// <remarks>Immutable and safe to share between threads; <see cref="Match"/> is a pure function of its inputs.</remarks>
internal sealed class XdsRouteTable
{
    public XdsRouteTable(string name, IReadOnlyList<XdsVirtualHost> virtualHosts)
    {
        Name = name;
        VirtualHosts = virtualHosts;
    }

    /// <summary>Gets the route configuration name.</summary>
    public string Name { get; }

    /// <summary>Gets the virtual hosts in the order received.</summary>
    public IReadOnlyList<XdsVirtualHost> VirtualHosts { get; }

    /// <summary>
    /// Finds the virtual host for an authority as Envoy and gRPC do: an exact domain first, then the longest suffix
    /// wildcard (<c>*.example.com</c>), then the longest prefix wildcard (<c>example.*</c>), then <c>*</c>. Matching
    /// ignores case; when nothing matches the authority with its port, the host without the port is tried.
    /// </summary>
    /// <param name="authority">The request's authority (host header), with or without a port.</param>
    /// <returns>The virtual host, or <see langword="null"/>.</returns>
    public XdsVirtualHost? FindVirtualHost(string authority)
    {
        ArgumentNullException.ThrowIfNull(authority);
        var found = FindBest(authority);
        if (found is null)
        {
            var colon = authority.LastIndexOf(':');
            if (colon > 0 && authority.IndexOf(']', StringComparison.Ordinal) < colon)
            {
                found = FindBest(authority[..colon]);
            }
        }

        return found;
    }

    /// <summary>Chooses the route and cluster for a request.</summary>
    /// <param name="authority">The request's authority.</param>
    /// <param name="path">The request path, with or without a query string (the query is not matched).</param>
    /// <param name="headers">Returns a request header's value (several values joined with commas), or <see langword="null"/> when absent.</param>
    /// <param name="random">Numbers in [0, 1) for runtime fractions and weighted clusters.</param>
    /// <returns>The match, or <see langword="null"/> when no virtual host or route matches.</returns>
    public XdsRouteResult? Match(string authority, string path, Func<string, string?> headers, Func<double> random)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(headers);
        ArgumentNullException.ThrowIfNull(random);
        var host = FindVirtualHost(authority);
        if (host is null)
        {
            return null;
        }

        var query = path.IndexOf('?', StringComparison.Ordinal);
        var pathOnly = query >= 0 ? path[..query] : path;
        foreach (var route in host.Routes)
        {
            if (!route.Matches(pathOnly, headers, random))
            {
                continue;
            }

            var action = route.Action;
            return action is null
                ? new XdsRouteResult(host, route, null, null, null)
                : new XdsRouteResult(host, route, action.PickCluster(random), action.Timeout, action.RetryPolicy ?? host.RetryPolicy);
        }

        return null;
    }

    private XdsVirtualHost? FindBest(string authority)
    {
        XdsVirtualHost? best = null;
        var bestKind = int.MaxValue;
        var bestLength = -1;
        foreach (var host in VirtualHosts)
        {
            foreach (var domain in host.Domains)
            {
                var kind = MatchDomain(domain, authority);
                if (kind < 0)
                {
                    continue;
                }

                if (kind < bestKind || (kind == bestKind && domain.Length > bestLength))
                {
                    best = host;
                    bestKind = kind;
                    bestLength = domain.Length;
                }
            }
        }

        return best;
    }

    /// <summary>Returns 0 for an exact match, 1 suffix wildcard, 2 prefix wildcard, 3 universal, -1 no match.</summary>
    private static int MatchDomain(string domain, string host)
    {
        if (domain == "*")
        {
            return 3;
        }

        if (domain.StartsWith('*'))
        {
            var suffix = domain.AsSpan(1);
            return host.Length > suffix.Length && host.AsSpan().EndsWith(suffix, StringComparison.OrdinalIgnoreCase) ? 1 : -1;
        }

        if (domain.EndsWith('*'))
        {
            var prefix = domain.AsSpan(0, domain.Length - 1);
            return host.Length > prefix.Length && host.AsSpan().StartsWith(prefix, StringComparison.OrdinalIgnoreCase) ? 2 : -1;
        }

        return string.Equals(domain, host, StringComparison.OrdinalIgnoreCase) ? 0 : -1;
    }
}

/// <summary>The outcome of routing one request.</summary>
/// <param name="VirtualHost">The virtual host chosen by authority.</param>
/// <param name="Route">The first matching route.</param>
/// <param name="Cluster">The cluster to send to, or <see langword="null"/> when the route's action is not supported (the request must fail).</param>
/// <param name="Timeout">The route's timeout (<see cref="TimeSpan.Zero"/> disables it), or <see langword="null"/> when unset.</param>
/// <param name="RetryPolicy">The route's retry policy, else the virtual host's, or <see langword="null"/>.</param>
internal sealed record XdsRouteResult(XdsVirtualHost VirtualHost, XdsRoute Route, string? Cluster, TimeSpan? Timeout, XdsRetryPolicy? RetryPolicy);

/// <summary>A virtual host: domains and ordered routes.</summary>
internal sealed record XdsVirtualHost(string Name, IReadOnlyList<string> Domains, IReadOnlyList<XdsRoute> Routes, XdsRetryPolicy? RetryPolicy);
