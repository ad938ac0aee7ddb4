using System.Diagnostics.CodeAnalysis;

namespace Lodestar.Kubernetes.Discovery.Internal;

/// <summary>
/// Reads a logical host as a Kubernetes service: <c>orders</c> (namespace from options), <c>orders.shop</c>,
/// <c>orders.shop.svc</c> or <c>orders.shop.svc.cluster.local</c>, as cluster DNS names them.
/// </summary>
internal static class KubernetesServiceName
{
    public static bool TryParse(string host, string clusterDomain, [NotNullWhen(true)] out string? service, out string? @namespace)
    {
        service = null;
        @namespace = null;
        if (string.IsNullOrEmpty(host))
        {
            return false;
        }

        var name = host.TrimEnd('.').ToLowerInvariant();
        var domain = clusterDomain.Trim('.').ToLowerInvariant();
        if (domain.Length > 0 && name.EndsWith(".svc." + domain, StringComparison.Ordinal))
        {
            name = name[..^(domain.Length + 5)];
        }
        else if (name.EndsWith(".svc", StringComparison.Ordinal))
        {
            name = name[..^4];
        }

        var parts = name.Split('.');
        if (parts.Length > 2 || !parts.All(IsDnsLabel))
        {
            return false;
        }

        service = parts[0];
        @namespace = parts.Length == 2 ? parts[1] : null;
        return true;
    }

    /// <summary>Returns whether the text is an RFC 1123 label, as Kubernetes requires of names and namespaces.</summary>
    public static bool IsDnsLabel(string text)
    {
        if (text.Length is 0 or > 63 || text[0] == '-' || text[^1] == '-')
        {
            return false;
        }

        foreach (var c in text)
        {
            if (c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '-'))
            {
                return false;
            }
        }

        return true;
    }
}
