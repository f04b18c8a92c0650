using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Configuration;
using Orleans.Connections.Security;

namespace OrleansLimiter.Hosting;

/// <summary>
/// Mutual TLS on every Orleans connection (silo to silo, client to gateway), from PEM files named in
/// configuration: <c>Orleans:Tls:Certificate</c> and <c>Orleans:Tls:Key</c> (this process's own
/// certificate and key) and <c>Orleans:Tls:CaCertificate</c> (the cluster's certificate authority).
/// A peer is accepted when its certificate chains to that authority: holding a certificate it signed
/// is what admits a silo or a client to the cluster. Host names are not checked, because silos dial
/// each other by IP address; the authority should sign certificates for this cluster only.
/// </summary>
public sealed class ClusterTls
{
    /// <summary>The configuration section.</summary>
    public const string Section = "Orleans:Tls";

    private ClusterTls(X509Certificate2 certificate, X509Certificate2 authority, string certificatePath)
    {
        Certificate = certificate;
        Authority = authority;
        CertificatePath = certificatePath;
    }

    /// <summary>This process's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    /// <summary>The certificate authority that peers' certificates must chain to.</summary>
    public X509Certificate2 Authority { get; }

    /// <summary>Where <see cref="Certificate"/> was read from (for logs).</summary>
    public string CertificatePath { get; }

    /// <summary>
    /// Reads the TLS settings: null when none of them is set; throws <see cref="FormatException"/>
    /// naming the setting when only some are, or a file is missing or unreadable.
    /// </summary>
    public static ClusterTls? FromConfiguration(IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(Section);
        var certificate = section["Certificate"];
        var key = section["Key"];
        var ca = section["CaCertificate"];
        if (string.IsNullOrWhiteSpace(certificate) && string.IsNullOrWhiteSpace(key) && string.IsNullOrWhiteSpace(ca))
        {
            return null;
        }

        var certificatePath = RequiredFile(certificate, "Certificate");
        var keyPath = RequiredFile(key, "Key");
        var caPath = RequiredFile(ca, "CaCertificate");
        X509Certificate2 own;
        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(certificatePath, keyPath);
            // A key that lives only in memory (as CreateFromPemFile gives) cannot serve TLS on every
            // platform; a PKCS#12 round trip gives one that can.
            own = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), password: null);
        }
        catch (CryptographicException ex)
        {
            throw new FormatException($"{Section}:Certificate / {Section}:Key: cannot read a certificate with its private key from '{certificatePath}' and '{keyPath}' ({ex.Message}).", ex);
        }

        X509Certificate2 authority;
        try
        {
            authority = X509CertificateLoader.LoadCertificateFromFile(caPath);
        }
        catch (CryptographicException ex)
        {
            throw new FormatException($"{Section}:CaCertificate: cannot read a certificate from '{caPath}' ({ex.Message}).", ex);
        }

        if (!ChainsTo(own, authority))
        {
            throw new FormatException($"{Section}:Certificate: '{certificatePath}' is not signed by the authority in {Section}:CaCertificate ('{caPath}'), or has expired.");
        }

        return new ClusterTls(own, authority, certificatePath);
    }

    /// <summary>
    /// Sets <paramref name="options"/> for mutual TLS: this process presents <see cref="Certificate"/>,
    /// and requires every peer — silos and clients alike — to present one that chains to
    /// <see cref="Authority"/>.
    /// </summary>
    public void Configure(TlsOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.LocalCertificate = Certificate;
        options.RemoteCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.ClientCertificateMode = RemoteCertificateMode.RequireCertificate;
        options.RemoteCertificateValidation = (certificate, _, errors) =>
            (errors & SslPolicyErrors.RemoteCertificateNotAvailable) == 0 && ChainsTo(certificate, Authority);
    }

    /// <summary>Whether <paramref name="certificate"/> is valid now and chains to <paramref name="authority"/> alone.</summary>
    public static bool ChainsTo(X509Certificate2 certificate, X509Certificate2 authority)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        ArgumentNullException.ThrowIfNull(authority);
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(authority);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(certificate);
    }

    private static string RequiredFile(string? path, string name)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            throw new FormatException($"{Section}:{name} is not set; TLS needs {Section}:Certificate, {Section}:Key and {Section}:CaCertificate together.");
        }

        return File.Exists(path) ? path : throw new FormatException($"{Section}:{name}: file '{path}' does not exist.");
    }
}
