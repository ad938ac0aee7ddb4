namespace Lodestar.Grpc.Internal;

/// <summary>Reads a <c>lodestar:///service?source=name</c> channel address.</summary>
internal static class LodestarAddress
{
    /// <summary>Gets the service and source of an address.</summary>
    /// <exception cref="ArgumentException">The address names no service, or has a query parameter other than <c>source</c>.</exception>
    public static (string Service, string? Source) Parse(Uri address)
    {
        var service = address.AbsolutePath.Trim('/');
        if (service.Length == 0 && !string.IsNullOrEmpty(address.Host))
        {
            // lodestar://orders is a common slip for lodestar:///orders; accept it.
            service = address.Host;
        }

        if (service.Length == 0 || service.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException(
                $"The gRPC channel address '{address}' names no single service: use lodestar:///<service>, optionally with ?source=<source>.", nameof(address));
        }

        string? source = null;
        var query = address.Query.TrimStart('?');
        foreach (var part in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            var key = eq < 0 ? part : part[..eq];
            var value = eq < 0 ? string.Empty : Uri.UnescapeDataString(part[(eq + 1)..]);
            if (key.Equals("source", StringComparison.OrdinalIgnoreCase) && value.Length > 0)
            {
                source = value;
            }
            else
            {
                throw new ArgumentException(
                    $"The gRPC channel address '{address}' has the query parameter '{key}' with no meaning here; only 'source=<name>' is understood.", nameof(address));
            }
        }

        return (Uri.UnescapeDataString(service), source);
    }
}
