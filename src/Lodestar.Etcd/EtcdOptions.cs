namespace Lodestar.Etcd;

/// <summary>Options of the etcd source and registrar, bound from the <c>Lodestar:Etcd</c> configuration section.</summary>
public sealed class EtcdOptions
{
    /// <summary>The configuration section these options bind from.</summary>
    public const string SectionName = "Lodestar:Etcd";

    /// <summary>
    /// Gets or sets the URL of etcd's client endpoint (its JSON gateway serves <c>/v3/</c> on the same port), or the
    /// URLs of several members of one cluster separated by commas, as etcdctl's <c>--endpoints</c>:
    /// <c>http://10.0.0.1:2379,http://10.0.0.2:2379</c> (spaces around the commas are allowed).
    /// Default <c>http://127.0.0.1:2379</c>; each entry must be an absolute http or https URL with no path.
    /// </summary>
    /// <remarks>
    /// Requests go to one member at a time, starting with the first. When a member cannot be reached (connection
    /// refused or reset, TLS failure), the request is sent at once to the next member, each member at most once per
    /// request, and later requests stay with the member that answered. A member that lets a request time out is left
    /// for the next request, but that request fails, since etcd may have applied it.
    /// </remarks>
    public string Address { get; set; } = "http://127.0.0.1:2379";

    /// <summary>
    /// Gets or sets the key prefix put before the service name: the instances of service <c>orders</c> are the keys
    /// under <c>{Prefix}orders/</c>. Default empty, which is the layout of etcd's Go <c>naming/endpoints</c> package
    /// when its target is the service name, so Go services are found with no configuration. Example: <c>/services/</c>.
    /// </summary>
    public string Prefix { get; set; } = string.Empty;

    /// <summary>Gets or sets the user name for etcd authentication, or <see langword="null"/> (default) when auth is off.</summary>
    public string? Username { get; set; }

    /// <summary>Gets or sets the password for etcd authentication. It never appears in logs or error messages.</summary>
    public string? Password { get; set; }

    /// <summary>Gets or sets a PEM file with the CA certificate(s) that sign etcd's server certificate, or <see langword="null"/> to use the system trust store.</summary>
    public string? CaCertificatePath { get; set; }

    /// <summary>Gets or sets a PEM file with the client certificate for mutual TLS, or <see langword="null"/> for none.</summary>
    public string? ClientCertificatePath { get; set; }

    /// <summary>Gets or sets the PEM file with the client certificate's private key, or <see langword="null"/> when the certificate file holds it.</summary>
    public string? ClientKeyPath { get; set; }

    /// <summary>
    /// Gets or sets the timeout of each non-watch request (range, put, lease calls). Default 5 seconds; range 100 ms to
    /// 2 minutes.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Gets or sets the longest wait between retries after failures; waits grow exponentially from 100 ms with full
    /// jitter up to this cap, and start again from 100 ms after the watch has been healthy for 10 seconds. Default
    /// 10 seconds; range 100 ms to 5 minutes.
    /// </summary>
    public TimeSpan MaxRetryDelay { get; set; } = TimeSpan.FromSeconds(10);
}
